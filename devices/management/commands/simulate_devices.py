import contextlib
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from devices.broker import BrokerAccounts, BrokerError
from devices.models import Device, mqtt_password_for
from devices.simulator import PROFILES, HttpRunner, MqttRunner, SimulatedDevice
from telemetry.mqtt import broker_address

# A mixed fleet starts with the air purifier, so even a small one takes commands.
MIXED = ["air_purifier", "default", "industrial", "high_frequency", "energy_efficient"]


class Command(BaseCommand):
    help = "Run simulated devices that send telemetry and execute commands, over MQTT or HTTP."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--owner", default="demo", help="Username owning the simulated devices.")
        parser.add_argument("--count", type=int, default=3)
        parser.add_argument("--profile", default="mixed", choices=[*PROFILES, "mixed"])
        parser.add_argument("--transport", default="mqtt", choices=["mqtt", "http"])
        parser.add_argument("--interval", type=float, help="Seconds between messages (default: the profile's).")
        parser.add_argument("--duration", type=float, default=0, help="Stop after this many seconds (0: Ctrl-C).")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="The platform, for --transport http.")
        parser.add_argument("--prefix", default="Simulated", help="Device name prefix.")
        parser.add_argument("--wait-for-broker", type=float, default=0, help="Seconds to wait for the broker to start.")

    def handle(self, *args, **options) -> None:
        try:
            owner = User.objects.get(username=options["owner"])
        except User.DoesNotExist:
            raise CommandError(f"No user named {options['owner']!r}; create one or pass --owner.") from None
        names = MIXED if options["profile"] == "mixed" else [options["profile"]]
        stop = threading.Event()
        threads = []
        for index in range(options["count"]):
            profile = names[index % len(names)]
            device, key = self._device(owner, f"{options['prefix']} {profile} {index + 1}", profile)
            sim = SimulatedDevice(device.pk, profile)
            interval = options["interval"] or PROFILES[profile].interval
            runner = self._runner(options, sim, device, key, interval)
            threads.append(threading.Thread(target=runner.run, args=(stop,), daemon=True))
            self.stdout.write(f"device #{device.pk} {device.name!r} ({profile}, every {interval:g}s)")
        for thread in threads:
            thread.start()
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait(options["duration"] or None)
        stop.set()
        for thread in threads:
            thread.join(5)

    def _device(self, owner: User, name: str, profile: str) -> tuple[Device, str]:
        """Get or create the device and give it a fresh key, since stored keys cannot be read back."""
        device = Device.objects.filter(owner=owner, name=name).first() or Device(owner=owner, name=name)
        device.device_type = profile
        key = device.set_new_api_key()
        device.save()
        return device, key

    def _runner(self, options, sim: SimulatedDevice, device: Device, key: str, interval: float):
        if options["transport"] == "http":
            return HttpRunner(sim, options["base_url"], key, interval)
        password = mqtt_password_for(device)
        if settings.MQTT_MANAGE_ACCOUNTS:
            deadline = time.monotonic() + options["wait_for_broker"]
            while True:
                try:
                    with BrokerAccounts.from_settings() as accounts:
                        accounts.ensure_device(device.pk, password, list(device.groups.values_list("pk", flat=True)))
                    break
                except (BrokerError, OSError) as exc:
                    if time.monotonic() > deadline:
                        raise CommandError(f"Cannot create the device's broker account: {exc}") from None
                    time.sleep(1)
        host, port = broker_address()
        return MqttRunner(sim, host, port, device.mqtt_username, password, interval)
