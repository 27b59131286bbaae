from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devices.broker import (
    DYNSEC_FILE_NAME,
    BrokerError,
    initial_dynsec_config,
    render_config,
    write_dynsec_config,
)


class Command(BaseCommand):
    help = (
        "Write mosquitto.conf for IoTFlow's broker into the data directory, and the dynamic-security "
        "accounts file with IoTFlow's admin and platform accounts if there is none yet."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--data-dir", type=Path, required=True, help="Broker state: accounts and persistence.")
        parser.add_argument("--bind-address", default="", help="Listen on this address only (default: all).")
        parser.add_argument("--plugin", default="", help="Path of mosquitto_dynamic_security.so.")
        parser.add_argument("--user", default="", help="User the broker switches to when started as root.")
        parser.add_argument(
            "--reset-accounts",
            action="store_true",
            help="Replace an existing accounts file; every device account in it is lost.",
        )

    def handle(self, *args, port: int, data_dir: Path, reset_accounts: bool, **options) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            config = render_config(
                port,
                data_dir,
                bind_address=options["bind_address"],
                plugin_path=options["plugin"],
                user=options["user"],
            )
        except BrokerError as exc:
            raise CommandError(str(exc))
        (data_dir / "mosquitto.conf").write_text(config)
        self.stdout.write(f"Wrote {data_dir / 'mosquitto.conf'}")

        accounts_file = data_dir / DYNSEC_FILE_NAME
        if accounts_file.exists() and not reset_accounts:
            self.stdout.write(f"Kept {accounts_file}: the broker's accounts live there.")
            return
        write_dynsec_config(accounts_file, initial_dynsec_config(*self._credentials()))
        self.stdout.write(f"Wrote {accounts_file}")

    def _credentials(self) -> tuple[str, str, str, str]:
        admin_password = getattr(settings, "MQTT_ADMIN_PASSWORD", "")
        platform_password = getattr(settings, "MQTT_PASSWORD", "")
        if not admin_password or not platform_password:
            raise CommandError("Set MQTT_ADMIN_PASSWORD and MQTT_PASSWORD before creating the broker's accounts.")
        return (
            getattr(settings, "MQTT_ADMIN_USERNAME", "iotflow-admin"),
            admin_password,
            getattr(settings, "MQTT_USERNAME", "iotflow-platform"),
            platform_password,
        )
