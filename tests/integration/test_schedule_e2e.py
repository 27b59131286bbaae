"""Schedules and overrides through real processes: beat and a worker over Redis, a simulated purifier over MQTT."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from devices import overrides
from devices.models import Command, Override, Schedule, ScheduleRun, mqtt_password_for
from devices.simulator import MqttRunner, SimulatedDevice

from .processes import start_beat, start_worker, stop_process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FAST = {
    "COMMAND_SWEEP_SECONDS": "0.5",
    "COMMAND_ACK_TIMEOUT_SECONDS": "2",
    "SCHEDULE_TICK_SECONDS": "0.5",
    "OVERRIDE_SWEEP_SECONDS": "0.5",
}


@pytest.fixture
def platform(private_broker, private_redis, tmp_path):
    """A worker (with its MQTT consumer) and beat on a private Redis, as `make run` starts them."""
    log = tmp_path / "processes.log"
    env = {"CELERY_BROKER_URL": private_redis.url, **FAST}
    worker = start_worker(private_broker, "schedules", log, **env)
    beat = start_beat(private_broker, log, tmp_path / "beat-schedule", **env)
    yield log
    stop_process(beat)
    stop_process(worker)


@pytest.fixture
def purifier(private_broker, device):
    """The device, with a simulated air purifier (power on, fan 2) online over MQTT."""
    target = device.device
    with private_broker.accounts() as accounts:
        accounts.ensure_device(target.pk, mqtt_password_for(target))
    sim = SimulatedDevice(target.pk, "air_purifier")
    runner = MqttRunner(
        sim, private_broker.host, private_broker.port, target.mqtt_username, mqtt_password_for(target), 1
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    yield target, sim
    stop.set()
    thread.join(5)


def test_beat_fires_a_schedule_that_the_purifier_executes(platform, purifier):
    device, sim = purifier
    # A span that started at the last minute boundary: within the catch-up window, so it fires at once.
    start = timezone.now().replace(second=0, microsecond=0)
    schedule = Schedule.objects.create(
        device=device,
        name="Now",
        days=[start.weekday()],
        start_time=start.time(),
        end_time=(start + timedelta(hours=2)).time(),
        start_params={"power": "on", "fan_speed": 4},
        time_zone="UTC",
    )

    def acknowledged_run():
        run = ScheduleRun.objects.filter(schedule=schedule).select_related("command").first()
        return run if run and run.command and run.command.status == Command.Status.ACKNOWLEDGED else None

    run = wait_for(acknowledged_run, 60, "the scheduled command's acknowledgement", platform)
    assert (run.edge, run.result, run.due_at) == ("start", "sent", start)
    assert (run.command.source, run.command.action) == ("schedule", "set_state")
    assert (sim.power, sim.fan_speed) == ("on", 4)
    device.refresh_from_db()
    assert device.reported_state["fan_speed"] == 4
    # beat kept ticking all along: still one firing and one command
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 1
    assert Command.objects.filter(device=device, source="schedule").count() == 1
    assert sim.executed.count(str(run.command.pk)) == 1


def test_beat_restores_an_override_whose_timed_task_was_lost(platform, purifier):
    """The override's timed task went to this test process's in-memory broker, like a task lost in a restart."""
    device, sim = purifier
    device.reported_state = {"power": "on", "fan_speed": 2}
    device.save(update_fields=["reported_state"])
    override = overrides.start(device, {"fan_speed": 5}, timedelta(seconds=5))

    def restored_and_acknowledged():
        override.refresh_from_db()
        command = override.restore_command
        return command is not None and command.status == Command.Status.ACKNOWLEDGED

    wait_for(restored_and_acknowledged, 60, "the override's restore to be acknowledged", platform)
    assert override.status == Override.Status.RESTORED
    assert override.ended_at >= override.ends_at
    assert override.restore_command.params == {"fan_speed": 2}
    assert sim.executed.index(str(override.apply_command_id)) < sim.executed.index(str(override.restore_command_id))
    assert sim.fan_speed == 2
