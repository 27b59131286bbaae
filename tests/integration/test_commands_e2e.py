"""Commands through real processes: beat and a worker deliver over a real broker to a simulated purifier."""

import threading

import pytest

from devices import commands
from devices.broker import BrokerAccounts
from devices.models import Command, mqtt_password_for
from devices.simulator import MqttRunner, SimulatedDevice
from notifications.models import Notification

from .processes import start_beat, start_worker, stop_process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FAST = {"COMMAND_SWEEP_SECONDS": "0.5", "COMMAND_ACK_TIMEOUT_SECONDS": "1", "COMMAND_MAX_ATTEMPTS": "3"}


@pytest.fixture
def platform(private_broker, private_redis, tmp_path):
    """A worker (with its MQTT consumer) and beat, as `make run` starts them."""
    log = tmp_path / "processes.log"
    env = {"CELERY_BROKER_URL": private_redis.url, **FAST}
    worker = start_worker(private_broker, "commands", log, **env)
    beat = start_beat(private_broker, log, tmp_path / "beat-schedule", **env)
    yield log
    stop_process(beat)
    stop_process(worker)


def test_purifier_executes_and_acknowledges_a_command(private_broker, platform, device):
    purifier = device.device
    with BrokerAccounts(
        private_broker.host, private_broker.port, private_broker.admin_username, private_broker.admin_password
    ) as accounts:
        accounts.ensure_device(purifier.pk, mqtt_password_for(purifier))
    sim = SimulatedDevice(purifier.pk, "air_purifier")
    runner = MqttRunner(
        sim, private_broker.host, private_broker.port, purifier.mqtt_username, mqtt_password_for(purifier), 0.5
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        command = commands.send(purifier, "set_fan_speed", {"fan_speed": 5})

        def acknowledged():
            command.refresh_from_db()
            return command.status == Command.Status.ACKNOWLEDGED

        wait_for(acknowledged, 60, "the purifier's acknowledgement", platform)
        assert sim.fan_speed == 5
        assert command.response["state"] == {"power": "on", "fan_speed": 5}
        purifier.refresh_from_db()
        assert purifier.reported_state["fan_speed"] == 5
        assert purifier.desired_state == {"fan_speed": 5}
        assert sim.executed.count(str(command.pk)) == 1
    finally:
        stop.set()
        thread.join(5)


def test_unanswered_command_is_retried_then_times_out_with_a_notification(platform, device, alice):
    command = commands.send(device.device, "turn_on")

    def timed_out():
        command.refresh_from_db()
        return command.status == Command.Status.TIMEOUT

    wait_for(timed_out, 60, "the command to time out", platform)
    assert command.attempts == 3
    assert Notification.objects.filter(user=alice, kind="command_timeout", device=device.device).count() == 1
