"""Overrides (pre-clean) apply parameters for a while and restore the saved state on time, whatever happens.

Every test passes its own clock (``now``); nothing patches time.
"""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from devices import overrides
from devices.models import Command, Override, Schedule
from devices.schedules import tick
from devices.tasks import restore_override, sweep_overrides
from notifications.models import Notification

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday
TEN_MINUTES = timedelta(minutes=10)


@pytest.fixture
def purifier(make_device, alice):
    device = make_device(alice, "living-room purifier", device_type="air_purifier").device
    device.reported_state = {"power": "on", "fan_speed": 2}
    device.save(update_fields=["reported_state"])
    return device


def boost(device, user=None, now=T0, duration=TEN_MINUTES) -> Override:
    return overrides.start(device, {"fan_speed": 5}, duration, user=user, now=now)


def override_commands(device) -> list[Command]:
    return list(Command.objects.filter(device=device, source=Command.Source.OVERRIDE).order_by("created_at"))


def test_start_saves_the_state_it_changes_applies_params_and_tells_the_owner(purifier, alice):
    override = boost(purifier, alice)

    assert override.status == "active" and override.saved_state == {"fan_speed": 2}
    assert override.ends_at == T0 + TEN_MINUTES
    (applied,) = override_commands(purifier)
    assert (applied.action, applied.params, applied.created_by) == ("set_state", {"fan_speed": 5}, alice)
    assert override.apply_command == applied
    purifier.refresh_from_db()
    assert purifier.desired_state["fan_speed"] == 5
    started = Notification.objects.get(user=alice, kind="override_started")
    assert started.device == purifier and "fan_speed=5" in started.message


def test_saved_state_falls_back_to_desired_state(purifier):
    purifier.reported_state = {}
    purifier.desired_state = {"fan_speed": 1}
    purifier.save(update_fields=["reported_state", "desired_state"])
    override = overrides.start(purifier, {"fan_speed": 5, "mode": "turbo"}, TEN_MINUTES, now=T0)
    assert override.saved_state == {"fan_speed": 1}  # the mode was never known, so it is not restored


def test_only_one_override_is_active_per_device(purifier):
    first = boost(purifier)
    with pytest.raises(overrides.OverrideConflict):
        boost(purifier, now=T0 + timedelta(minutes=1))
    assert len(override_commands(purifier)) == 1

    overrides.finish(first.pk, now=first.ends_at)
    assert boost(purifier, now=first.ends_at).is_active


def test_the_database_refuses_a_second_active_override(purifier):
    boost(purifier)
    with pytest.raises(IntegrityError):
        Override.objects.create(device=purifier, params={}, duration=TEN_MINUTES, started_at=T0, ends_at=T0)


def test_restore_happens_at_the_end_and_not_before(purifier, alice):
    override = boost(purifier)

    assert overrides.finish(override.pk, now=T0 + timedelta(minutes=9, seconds=59)) is None
    override.refresh_from_db()
    assert override.is_active

    restored = overrides.finish(override.pk, now=T0 + TEN_MINUTES)
    assert (restored.status, restored.ended_at) == ("restored", T0 + TEN_MINUTES)
    assert (restored.restore_command.action, restored.restore_command.params) == ("set_state", {"fan_speed": 2})
    assert Notification.objects.get(user=alice, kind="override_ended").message == "Restored fan_speed=2."

    assert overrides.finish(override.pk, now=T0 + TEN_MINUTES + timedelta(seconds=5)) is None
    assert len(override_commands(purifier)) == 2


def test_the_timed_task_restores_an_override_that_is_due(purifier):
    override = boost(purifier, now=timezone.now() - TEN_MINUTES - timedelta(seconds=1))
    restore_override.apply(args=[override.pk]).get()
    override.refresh_from_db()
    assert override.status == "restored" and override.restore_command is not None


def test_a_timed_task_that_runs_early_leaves_the_override_running(purifier):
    override = boost(purifier, now=timezone.now())
    restore_override.apply(args=[override.pk]).get()
    override.refresh_from_db()
    assert override.is_active and override.restore_command is None


def test_cancel_restores_at_once(purifier, alice):
    override = boost(purifier)
    cancelled = overrides.cancel(purifier, user=alice, now=T0 + timedelta(minutes=2))
    assert (cancelled.pk, cancelled.status, cancelled.ended_at) == (override.pk, "cancelled", T0 + timedelta(minutes=2))
    assert cancelled.restore_command.params == {"fan_speed": 2}
    assert Notification.objects.filter(user=alice, kind="override_ended", title__contains="cancelled").exists()
    with pytest.raises(overrides.OverrideConflict):
        overrides.cancel(purifier)
    # the timed task arrives later and finds nothing to do
    assert overrides.finish(override.pk, now=T0 + TEN_MINUTES) is None


def test_sweep_restores_an_override_whose_timed_task_was_lost(purifier):
    """A restart loses the queued task (here it was never run): beat's sweep restores on time."""
    override = boost(purifier)

    assert overrides.restore_overdue(now=T0 + timedelta(minutes=5)) == 0
    assert overrides.restore_overdue(now=T0 + TEN_MINUTES + timedelta(seconds=1)) == 1
    override.refresh_from_db()
    assert override.status == "restored" and override.restore_command.params == {"fan_speed": 2}

    # the lost task turns up after all, and a second beat sweeps too: nothing is restored twice
    restore_override.apply(args=[override.pk]).get()
    assert sweep_overrides.apply().get() == 0
    assert len(override_commands(purifier)) == 2


def test_nothing_to_restore_when_the_state_was_never_known(purifier, alice):
    purifier.reported_state = {}
    purifier.save(update_fields=["reported_state"])
    override = boost(purifier)
    restored = overrides.finish(override.pk, now=override.ends_at)
    assert restored.status == "restored" and restored.restore_command is None
    assert "Nothing to restore" in Notification.objects.get(user=alice, kind="override_ended").message


def test_muted_override_notifications_are_not_sent(purifier, alice):
    alice.muted_notification_kinds = ["override_started", "override_ended"]
    alice.save(update_fields=["muted_notification_kinds"])
    override = boost(purifier)
    overrides.finish(override.pk, now=override.ends_at)
    assert not Notification.objects.filter(user=alice, kind__startswith="override").exists()
    assert len(override_commands(purifier)) == 2


# Overrides and schedules


def make_schedule(device, **fields) -> Schedule:
    values = {
        "name": "Lunch",
        "days": [0],
        "start_time": time(12, 5),
        "end_time": time(13, 0),
        "start_params": {"power": "on", "fan_speed": 3},
        "time_zone": "UTC",
        **fields,
    }
    return Schedule.objects.create(device=device, **values)


def schedule_commands(device) -> list[Command]:
    return list(Command.objects.filter(device=device, source=Command.Source.SCHEDULE))


def test_a_schedule_start_during_an_override_is_restored_at_its_end(purifier):
    override = boost(purifier)  # 12:00-12:10, fan 5
    make_schedule(purifier)  # starts at 12:05: power on, fan 3

    (run,) = tick(T0 + timedelta(minutes=5, seconds=10))
    assert (run.result, run.command) == ("held", None)
    assert f"Override #{override.pk}" in run.detail
    assert schedule_commands(purifier) == []
    override.refresh_from_db()
    assert override.saved_state == {"power": "on", "fan_speed": 3}

    restored = overrides.finish(override.pk, now=override.ends_at)
    assert restored.restore_command.params == {"power": "on", "fan_speed": 3}


def test_a_schedule_end_during_an_override_makes_it_restore_off(purifier):
    override = boost(purifier)
    make_schedule(purifier, start_time=time(11, 0), end_time=time(12, 5))

    (run,) = tick(T0 + timedelta(minutes=5, seconds=10))
    assert (run.edge, run.result) == ("end", "held")
    restored = overrides.finish(override.pk, now=override.ends_at)
    assert restored.restore_command.params == {"fan_speed": 2, "power": "off"}


def test_a_restoring_schedule_started_under_an_override_remembers_the_state_before_it(purifier):
    override = boost(purifier)
    make_schedule(purifier, end_action="restore")

    (start,) = tick(T0 + timedelta(minutes=5, seconds=10))
    assert start.saved_state == {"power": "on", "fan_speed": 2}  # not the override's fan 5
    overrides.finish(override.pk, now=override.ends_at)

    (end,) = tick(datetime(2025, 1, 6, 13, 0, 10, tzinfo=UTC))
    assert (end.result, end.command.params) == ("sent", {"power": "on", "fan_speed": 2})


def test_schedules_fire_normally_once_the_override_is_over(purifier):
    override = boost(purifier)
    overrides.cancel(purifier, now=T0 + timedelta(minutes=1))
    make_schedule(purifier)
    (run,) = tick(T0 + timedelta(minutes=5, seconds=10))
    assert run.result == "sent" and run.command.source == "schedule"
    assert Override.objects.get(pk=override.pk).saved_state == {"fan_speed": 2}
