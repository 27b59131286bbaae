"""Schedules fire at the right local times, exactly once, across DST changes, restarts and outages.

Every test passes its own clock (``now``) to the functions; nothing patches time.
"""

import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, close_old_connections, connection

from devices import commands, schedules
from devices.models import Command, DeviceGroup, Schedule, ScheduleRun
from devices.schedules import edges_between, tick, wall_clock_instant
from notifications.models import Notification

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = 0
SUNDAY = 6


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_schedule(device, **fields) -> Schedule:
    values = {
        "name": "Morning clean",
        "days": [MONDAY],
        "start_time": time(8, 0),
        "end_time": time(9, 0),
        "start_params": {"power": "on", "fan_speed": 3},
        "time_zone": "Europe/Berlin",
        **fields,
    }
    target = {"group": device} if isinstance(device, DeviceGroup) else {"device": device}
    return Schedule.objects.create(**target, **values)


@pytest.fixture
def purifier(make_device, alice):
    device = make_device(alice, "living-room purifier", device_type="air_purifier").device
    device.reported_state = {"power": "off", "fan_speed": 2}
    device.save(update_fields=["reported_state"])
    return device


def schedule_commands(device) -> list[Command]:
    return list(Command.objects.filter(device=device, source=Command.Source.SCHEDULE).order_by("created_at"))


# Local times, as pure functions of (days, times, zone, window)


def test_local_times_follow_the_zone_through_the_year():
    # Berlin is UTC+1 in winter and UTC+2 in summer: 08:00 local is 07:00 or 06:00 UTC.
    assert wall_clock_instant(date(2025, 1, 6), time(8, 0), BERLIN) == utc(2025, 1, 6, 7, 0)
    assert wall_clock_instant(date(2025, 7, 7), time(8, 0), BERLIN) == utc(2025, 7, 7, 6, 0)


def test_a_time_the_clock_skips_names_the_moment_it_jumps():
    # 2025-03-30: Berlin jumps from 02:00 CET to 03:00 CEST, so 02:30 does not exist.
    assert wall_clock_instant(date(2025, 3, 30), time(2, 30), BERLIN) == utc(2025, 3, 30, 1, 0)


def test_a_time_the_clock_repeats_names_its_first_occurrence():
    # 2025-10-26: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
    assert wall_clock_instant(date(2025, 10, 26), time(2, 30), BERLIN) == utc(2025, 10, 26, 0, 30)


def test_spring_forward_start_is_due_once_when_the_clock_jumps():
    edges = edges_between([SUNDAY], time(2, 30), time(4, 0), BERLIN, utc(2025, 3, 29), utc(2025, 3, 31))
    assert [(e.kind, e.at) for e in edges] == [("start", utc(2025, 3, 30, 1, 0)), ("end", utc(2025, 3, 30, 2, 0))]


def test_fall_back_start_is_due_once_at_its_first_occurrence():
    edges = edges_between([SUNDAY], time(2, 30), time(4, 0), BERLIN, utc(2025, 10, 25), utc(2025, 10, 27))
    assert [(e.kind, e.at) for e in edges] == [("start", utc(2025, 10, 26, 0, 30)), ("end", utc(2025, 10, 26, 3, 0))]


def test_a_span_the_clock_skips_entirely_does_not_run_that_day():
    spring = edges_between([SUNDAY], time(2, 10), time(2, 50), BERLIN, utc(2025, 3, 29), utc(2025, 3, 31))
    assert spring == []
    next_week = edges_between([SUNDAY], time(2, 10), time(2, 50), BERLIN, utc(2025, 4, 5), utc(2025, 4, 7))
    assert [e.kind for e in next_week] == ["start", "end"]


def test_overnight_span_ends_next_morning_and_belongs_to_the_day_it_starts():
    friday = date(2025, 1, 10)
    edges = edges_between([friday.weekday()], time(22, 0), time(6, 0), BERLIN, utc(2025, 1, 10), utc(2025, 1, 12))
    assert [(e.slot_date, e.kind, e.at) for e in edges] == [
        (friday, "start", utc(2025, 1, 10, 21, 0)),
        (friday, "end", utc(2025, 1, 11, 5, 0)),
    ]


def test_sunday_overnight_span_ends_on_monday():
    edges = edges_between([SUNDAY], time(23, 0), time(1, 0), BERLIN, utc(2025, 1, 12, 12), utc(2025, 1, 13, 12))
    assert [(e.slot_date, e.kind, e.at) for e in edges] == [
        (date(2025, 1, 12), "start", utc(2025, 1, 12, 22, 0)),
        (date(2025, 1, 12), "end", utc(2025, 1, 13, 0, 0)),
    ]


def test_window_excludes_its_start_and_includes_its_end():
    due = utc(2025, 1, 6, 7, 0)
    assert [e.at for e in edges_between([MONDAY], time(8), time(9), BERLIN, due, due + timedelta(minutes=1))] == []
    assert [e.at for e in edges_between([MONDAY], time(8), time(9), BERLIN, due - timedelta(seconds=1), due)] == [due]


# Firing through tick(now)


def test_schedule_fires_at_its_local_start_time_and_not_before(purifier):
    schedule = make_schedule(purifier)  # Monday 08:00 Berlin = 07:00 UTC in January

    assert tick(utc(2025, 1, 6, 6, 59, 30)) == []
    runs = tick(utc(2025, 1, 6, 7, 0, 10))

    assert [(r.schedule, r.edge, r.result, r.due_at) for r in runs] == [
        (schedule, "start", "sent", utc(2025, 1, 6, 7, 0))
    ]
    command = runs[0].command
    assert (command.action, command.params, command.source) == (
        "set_state",
        {"power": "on", "fan_speed": 3},
        "schedule",
    )
    purifier.refresh_from_db()
    assert purifier.desired_state == {"power": "on", "fan_speed": 3}
    assert runs[0].saved_state == {"power": "off", "fan_speed": 2}
    assert Notification.objects.filter(kind="schedule_executed", device=purifier).count() == 1


def test_two_ticks_in_the_same_minute_fire_once(purifier):
    make_schedule(purifier)
    assert len(tick(utc(2025, 1, 6, 7, 0, 5))) == 1
    assert tick(utc(2025, 1, 6, 7, 0, 35)) == []
    assert len(schedule_commands(purifier)) == 1
    assert ScheduleRun.objects.count() == 1


def test_fire_refuses_a_slot_that_already_fired(purifier):
    """What the unique constraint guarantees when two workers get past the pre-check together."""
    schedule = make_schedule(purifier)
    edge = schedules.schedule_edges(schedule, utc(2025, 1, 6, 6), utc(2025, 1, 6, 7, 30))[0]
    assert schedules.fire(schedule, edge, purifier.pk, utc(2025, 1, 6, 7, 0, 1)) is not None
    assert schedules.fire(schedule, edge, purifier.pk, utc(2025, 1, 6, 7, 0, 2)) is None
    assert len(schedule_commands(purifier)) == 1


def test_a_slot_is_unique_in_the_database(purifier):
    schedule = make_schedule(purifier)
    slot = {"schedule": schedule, "device": purifier, "slot_date": date(2025, 1, 6), "edge": "start"}
    moment = utc(2025, 1, 6, 7, 0)
    ScheduleRun.objects.create(**slot, due_at=moment, fired_at=moment, result="sent")
    with pytest.raises(IntegrityError):
        ScheduleRun.objects.create(**slot, due_at=moment, fired_at=moment, result="sent")


def test_missed_edge_fires_late_after_an_outage(purifier):
    make_schedule(purifier)
    assert tick(utc(2025, 1, 6, 6, 59, 50)) == []
    # beat and the workers are down from 06:59:50 until 07:04:00 UTC
    runs = tick(utc(2025, 1, 6, 7, 4, 0))
    assert [(r.edge, r.due_at, r.fired_at) for r in runs] == [
        ("start", utc(2025, 1, 6, 7, 0), utc(2025, 1, 6, 7, 4, 0))
    ]


def test_edges_older_than_the_catch_up_window_never_fire(purifier, settings):
    make_schedule(purifier)
    assert settings.SCHEDULE_CATCH_UP_SECONDS == 300
    assert tick(utc(2025, 1, 6, 7, 5, 1)) == []
    settings.SCHEDULE_CATCH_UP_SECONDS = 600
    assert [r.edge for r in tick(utc(2025, 1, 6, 7, 5, 1))] == ["start"]


def test_restarted_beat_neither_skips_nor_repeats(purifier):
    make_schedule(purifier)
    assert len(tick(utc(2025, 1, 6, 7, 0, 10))) == 1
    # a restarted beat ticks again over the same window, then goes on as usual
    moment = utc(2025, 1, 6, 7, 0, 20)
    fired = []
    while moment < utc(2025, 1, 6, 8, 10):
        fired += tick(moment)
        moment += timedelta(seconds=30)
    assert [(r.edge, r.due_at) for r in fired] == [("end", utc(2025, 1, 6, 8, 0))]
    assert [c.action for c in schedule_commands(purifier)] == ["set_state", "turn_off"]


def test_disabled_schedule_never_fires(purifier):
    make_schedule(purifier, enabled=False)
    assert tick(utc(2025, 1, 6, 7, 0, 10)) == []
    assert tick(utc(2025, 1, 6, 8, 0, 10)) == []
    assert schedule_commands(purifier) == []


def test_end_turns_the_device_off_by_default(purifier):
    make_schedule(purifier)
    tick(utc(2025, 1, 6, 7, 0, 10))
    (run,) = tick(utc(2025, 1, 6, 8, 0, 10))
    assert (run.edge, run.command.action, run.command.params) == ("end", "turn_off", {})
    purifier.refresh_from_db()
    assert purifier.desired_state["power"] == "off"


def test_restoring_end_brings_back_the_state_before_the_start(purifier):
    make_schedule(purifier, end_action="restore")
    (start,) = tick(utc(2025, 1, 6, 7, 0, 10))
    commands.acknowledge(purifier, start.command.pk, True, {"state": {"power": "on", "fan_speed": 3}})

    (end,) = tick(utc(2025, 1, 6, 8, 0, 10))
    assert (end.command.action, end.command.params) == ("set_state", {"power": "off", "fan_speed": 2})


def test_restoring_end_without_a_recorded_start_sends_nothing(purifier):
    make_schedule(purifier, end_action="restore")
    (end,) = tick(utc(2025, 1, 6, 8, 0, 10))  # created after this morning's start had passed
    assert (end.result, end.command) == ("skipped", None)
    assert "Nothing was recorded" in end.detail
    assert schedule_commands(purifier) == []


def test_overnight_schedule_fires_its_end_the_next_morning(purifier):
    friday = 4
    make_schedule(purifier, days=[friday], start_time=time(22, 0), end_time=time(6, 0))
    assert [r.edge for r in tick(utc(2025, 1, 10, 21, 0, 10))] == ["start"]
    (end,) = tick(utc(2025, 1, 11, 5, 0, 10))
    assert (end.edge, end.slot_date, end.command.action) == ("end", date(2025, 1, 10), "turn_off")


def test_group_schedule_fires_once_on_every_device_of_the_group(make_device, alice, purifier):
    bedroom = make_device(alice, "bedroom purifier").device
    group = DeviceGroup.objects.create(owner=alice, name="purifiers")
    group.devices.add(purifier, bedroom)
    make_schedule(group)

    runs = tick(utc(2025, 1, 6, 7, 0, 10))
    assert sorted(r.device_id for r in runs) == sorted([purifier.pk, bedroom.pk])
    assert tick(utc(2025, 1, 6, 7, 0, 40)) == []
    assert Notification.objects.filter(user=alice, kind="schedule_executed").count() == 1


def test_back_to_back_schedules_end_before_the_next_one_starts(purifier):
    make_schedule(purifier, name="early", start_time=time(7, 0), end_time=time(8, 0))
    late_params = {"power": "on", "fan_speed": 4}
    make_schedule(purifier, name="late", start_time=time(8, 0), end_time=time(9, 0), start_params=late_params)
    tick(utc(2025, 1, 6, 6, 0, 10))

    runs = tick(utc(2025, 1, 6, 7, 0, 10))
    assert [(r.schedule.name, r.edge) for r in runs] == [("early", "end"), ("late", "start")]
    purifier.refresh_from_db()
    assert purifier.desired_state == {"power": "on", "fan_speed": 4}


def test_deleting_a_schedule_stops_it(purifier):
    schedule = make_schedule(purifier)
    tick(utc(2025, 1, 6, 7, 0, 10))
    schedule.delete()
    assert tick(utc(2025, 1, 6, 8, 0, 10)) == []


def test_spring_forward_start_fires_once_with_a_tick_every_30_seconds(purifier):
    make_schedule(purifier, days=[SUNDAY], start_time=time(2, 30), end_time=time(4, 0))
    fired = []
    moment = utc(2025, 3, 30, 0, 0)
    while moment <= utc(2025, 3, 30, 3, 0):
        fired += tick(moment)
        moment += timedelta(seconds=30)
    assert [(r.edge, r.due_at) for r in fired] == [("start", utc(2025, 3, 30, 1, 0)), ("end", utc(2025, 3, 30, 2, 0))]


def test_fall_back_start_fires_once_with_a_tick_every_30_seconds(purifier):
    make_schedule(purifier, days=[SUNDAY], start_time=time(2, 30), end_time=time(3, 30))
    fired = []
    moment = utc(2025, 10, 26, 0, 0)
    while moment <= utc(2025, 10, 26, 3, 0):
        fired += tick(moment)
        moment += timedelta(seconds=30)
    # 02:30 CEST is 00:30 UTC; the repeated 02:30 CET (01:30 UTC) does not fire again; 03:30 CET is 02:30 UTC.
    assert [(r.edge, r.due_at) for r in fired] == [
        ("start", utc(2025, 10, 26, 0, 30)),
        ("end", utc(2025, 10, 26, 2, 30)),
    ]


def test_owner_time_zone_is_the_default(purifier, alice):
    alice.time_zone = "America/New_York"
    alice.save(update_fields=["time_zone"])
    schedule = make_schedule(purifier, time_zone="")
    assert schedule.time_zone == "America/New_York"
    # Monday 08:00 in New York in January is 13:00 UTC
    assert [r.due_at for r in tick(utc(2025, 1, 6, 13, 0, 10))] == [utc(2025, 1, 6, 13, 0)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_ticks_fire_once(purifier):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite locks the whole database for a writer; the race between row writers needs PostgreSQL")
    make_schedule(purifier)
    now = utc(2025, 1, 6, 7, 0, 10)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def beat() -> None:
        try:
            barrier.wait(5)
            results.append(len(tick(now)))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(results) == [0, 0, 0, 1]
    assert len(schedule_commands(purifier)) == 1
