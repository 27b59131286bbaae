"""Rollup tiers on the SQL backend: they agree with raw aggregation, follow late points, and are read when they fit."""

import random

import pytest

from telemetry.backends import get_backend
from telemetry.backends.sql_retention import apply as apply_retention
from telemetry.backends.sql_rollups import _raw_parts
from telemetry.models import RollupHour, RollupMarker, RollupMinute, TelemetryPoint
from telemetry.points import Point
from telemetry.rollups import HOUR_MS, MINUTE_MS, Partial, Segment, finish, split
from telemetry.timeparse import now_ms

T0 = 1751450400000  # 2025-07-02T10:00:00Z, on an hour boundary
SECOND = 1000
FUNCTIONS = ("mean", "min", "max", "sum", "count")


def refresh() -> dict:
    return get_backend().refresh_rollups()


def aggregate(device_id, start, end, window, function="mean", fields=("t",)):
    return get_backend().aggregate(device_id, list(fields), start=start, end=end, window_ms=window, function=function)


def raw_answer(device_id, start, end, window, function, fields=("t",)):
    """The answer from raw points alone, as the backend gave it before rollups existed."""
    return finish(list(fields), _raw_parts(device_id, list(fields), start, end, window), window, function)


def as_tuples(answer):
    return {field: [(b.ts, pytest.approx(b.value), b.count) for b in buckets] for field, buckets in answer.items()}


@pytest.fixture
def three_hours(device):
    """A reading every 20 s for three hours, integers and floats mixed, with some text and booleans."""
    rng = random.Random(6)
    points = []
    for i in range(3 * 180):
        ts = T0 + i * 20 * SECOND
        value = rng.randint(-50, 50) if i % 3 else rng.randint(-500, 500) / 4
        points.append(Point(device.pk, "t", ts, value))
        points.append(Point(device.pk, "on", ts, i % 4 == 0))
        points.append(Point(device.pk, "mode", ts, "eco"))
    get_backend().write(points)
    return device


class TestPlanning:
    def test_aligned_range_is_one_hourly_segment(self):
        assert split(T0, T0 + 3 * HOUR_MS, HOUR_MS) == [Segment("1h", T0, T0 + 3 * HOUR_MS)]

    def test_edges_go_to_minutes_then_raw(self):
        start, end = T0 + 90 * SECOND, T0 + 2 * HOUR_MS + 5 * MINUTE_MS + 7 * SECOND

        assert split(start, end, HOUR_MS) == [
            Segment("raw", start, T0 + 2 * MINUTE_MS),
            Segment("1m", T0 + 2 * MINUTE_MS, T0 + HOUR_MS),
            Segment("1h", T0 + HOUR_MS, T0 + 2 * HOUR_MS),
            Segment("1m", T0 + 2 * HOUR_MS, T0 + 2 * HOUR_MS + 5 * MINUTE_MS),
            Segment("raw", T0 + 2 * HOUR_MS + 5 * MINUTE_MS, end),
        ]

    def test_windows_that_are_not_whole_buckets_use_finer_tiers(self):
        assert split(T0, T0 + 3 * HOUR_MS, 90 * MINUTE_MS) == [Segment("1m", T0, T0 + 3 * HOUR_MS)]
        assert split(T0, T0 + HOUR_MS, 30 * SECOND) == [Segment("raw", T0, T0 + HOUR_MS)]

    def test_partials_compose(self):
        whole = Partial.of([1, 5, 2, 8])
        halves = Partial.of([1, 5]).merge(Partial.of([2, 8]))

        assert whole == halves == Partial(4, 1.0, 8.0, 16.0)
        assert [whole.value(f) for f in FUNCTIONS] == [4.0, 1.0, 8.0, 16.0, 4.0]


class TestRefresh:
    def test_rollups_hold_count_min_max_and_sum_of_numeric_points(self, three_hours):
        refresh()

        minute = RollupMinute.objects.get(device=three_hours.device, measurement="t", bucket=T0)
        raw = [p.value for p in get_backend().history(three_hours.pk, start=T0, end=T0 + MINUTE_MS, fields=["t"])]
        assert (minute.count, minute.minimum, minute.maximum) == (3, min(raw), max(raw))
        assert minute.total == pytest.approx(sum(raw))
        assert RollupHour.objects.filter(device=three_hours.device, measurement="t").count() == 3
        assert RollupMinute.objects.filter(measurement="mode").count() == 0
        on = RollupHour.objects.get(device=three_hours.device, measurement="on", bucket=T0)
        assert (on.count, on.total) == (180, 45.0)  # booleans count as 0 and 1
        assert not RollupMarker.objects.exists()

    def test_nothing_to_do_the_second_time(self, three_hours):
        assert refresh()["markers"] > 0
        assert refresh() == {"markers": 0}


class TestTiersAgreeWithRaw:
    @pytest.mark.parametrize("function", FUNCTIONS)
    @pytest.mark.parametrize(
        "start,end,window",
        [
            (T0, T0 + 3 * HOUR_MS, HOUR_MS),
            (T0 + 37 * SECOND, T0 + 3 * HOUR_MS - 11 * SECOND, HOUR_MS),
            (T0 + 7 * MINUTE_MS, T0 + 2 * HOUR_MS + 13 * MINUTE_MS, 15 * MINUTE_MS),
            (T0 - HOUR_MS, T0 + 5 * HOUR_MS, 3 * HOUR_MS),
            (T0 + 5 * SECOND, T0 + HOUR_MS, 30 * SECOND),
            (T0, T0 + 3 * HOUR_MS, 24 * HOUR_MS),
        ],
    )
    def test_every_function_window_and_range(self, three_hours, start, end, window, function):
        refresh()

        for fields in (["t"], ["on"], ["t", "on", "mode"]):
            tiered = aggregate(three_hours.pk, start, end, window, function, fields)
            assert as_tuples(tiered) == as_tuples(raw_answer(three_hours.pk, start, end, window, function, fields))

    def test_an_aligned_range_is_read_from_rollups(self, three_hours):
        refresh()
        before = aggregate(three_hours.pk, T0, T0 + 3 * HOUR_MS, HOUR_MS, "sum")
        # Remove the raw points behind the backend's back: only the rollups can still answer.
        TelemetryPoint.objects.filter(device_id=three_hours.pk).delete()

        after = aggregate(three_hours.pk, T0, T0 + 3 * HOUR_MS, HOUR_MS, "sum")

        assert as_tuples(after) == as_tuples(before)
        assert sum(b.count for b in after["t"]) == 540


class TestLateArrivingPoints:
    def test_a_late_point_counts_before_and_after_the_next_pass(self, device):
        backend = get_backend()
        backend.write([Point(device.pk, "t", T0 + i * MINUTE_MS, 10.0) for i in range(60)])
        refresh()

        backend.write([Point(device.pk, "t", T0 + 30 * MINUTE_MS + 5 * SECOND, 100.0)])  # into a rolled-up minute
        pending = aggregate(device.pk, T0, T0 + HOUR_MS, HOUR_MS, "max")
        refresh()
        folded = aggregate(device.pk, T0, T0 + HOUR_MS, HOUR_MS, "max")

        assert [(b.value, b.count) for b in pending["t"]] == [(100.0, 61)]
        assert [(b.value, b.count) for b in folded["t"]] == [(100.0, 61)]
        hour = RollupHour.objects.get(device=device.device, measurement="t", bucket=T0)
        assert (hour.count, hour.maximum, hour.total) == (61, 100.0, 700.0)
        assert RollupMinute.objects.get(device=device.device, measurement="t", bucket=T0 + 30 * MINUTE_MS).count == 2

    def test_a_redelivered_point_is_counted_once(self, device):
        backend = get_backend()
        point = Point(device.pk, "t", T0, 5.0)
        backend.write([point])
        refresh()

        backend.write([point])
        refresh()

        assert aggregate(device.pk, T0, T0 + HOUR_MS, HOUR_MS, "count")["t"][0].count == 1

    def test_late_points_for_an_hour_whose_minutes_are_past_retention(self, device, settings):
        """Retention removed the raw points and the minutes; a late point is added to the hour, once."""
        settings.RETENTION_RAW_DAYS, settings.RETENTION_1M_DAYS, settings.RETENTION_1H_DAYS = 1, 2, 0
        backend = get_backend()
        backend.write([Point(device.pk, "t", T0 + i * MINUTE_MS, 2.0) for i in range(60)])
        refresh()
        apply_retention(now=T0 + 10 * 86_400_000)
        assert not TelemetryPoint.objects.filter(device_id=device.pk).exists()
        assert not RollupMinute.objects.filter(device_id=device.pk).exists()

        backend.write([Point(device.pk, "t", T0 + 5 * MINUTE_MS + 1, 8.0)])
        pending = aggregate(device.pk, T0, T0 + HOUR_MS, HOUR_MS, "sum")
        refresh()
        refresh()

        hour = RollupHour.objects.get(device=device.device, measurement="t", bucket=T0)
        assert (hour.count, hour.total, hour.maximum) == (61, 128.0, 8.0)
        assert [(b.value, b.count) for b in pending["t"]] == [(128.0, 61)]
        assert aggregate(device.pk, T0, T0 + HOUR_MS, HOUR_MS, "sum")["t"][0].value == 128.0
        assert not TelemetryPoint.objects.filter(device_id=device.pk).exists()  # past retention, now folded

    def test_late_points_for_a_minute_whose_raw_points_are_past_retention(self, device, settings):
        settings.RETENTION_RAW_DAYS, settings.RETENTION_1M_DAYS, settings.RETENTION_1H_DAYS = 1, 30, 0
        backend = get_backend()
        backend.write([Point(device.pk, "t", T0 + i * SECOND, 1.0) for i in range(10)])
        refresh()
        apply_retention(now=T0 + 10 * 86_400_000)
        assert RollupMinute.objects.get(device=device.device, measurement="t", bucket=T0).source_pruned

        backend.write([Point(device.pk, "t", T0 + 30 * SECOND, 11.0)])
        assert aggregate(device.pk, T0, T0 + MINUTE_MS, MINUTE_MS, "sum")["t"][0].value == 21.0
        refresh()

        minute = RollupMinute.objects.get(device=device.device, measurement="t", bucket=T0)
        assert (minute.count, minute.total) == (11, 21.0)
        assert RollupHour.objects.get(device=device.device, measurement="t", bucket=T0).total == 21.0
        assert aggregate(device.pk, T0, T0 + HOUR_MS, HOUR_MS, "sum")["t"][0].value == 21.0


class TestDeletes:
    def test_deleting_a_range_keeps_rollups_true(self, three_hours):
        backend = get_backend()
        refresh()

        backend.delete(three_hours.pk, start=T0 + 50 * MINUTE_MS + 30 * SECOND, end=T0 + 2 * HOUR_MS + 10 * SECOND)
        refresh()

        for window in (MINUTE_MS, HOUR_MS):
            for function in FUNCTIONS:
                tiered = aggregate(three_hours.pk, T0, T0 + 3 * HOUR_MS, window, function, ["t", "on"])
                raw = raw_answer(three_hours.pk, T0, T0 + 3 * HOUR_MS, window, function, ["t", "on"])
                assert as_tuples(tiered) == as_tuples(raw)

    def test_deleting_one_field_leaves_the_others(self, three_hours):
        backend = get_backend()
        refresh()

        backend.delete(three_hours.pk, fields=["t"])

        assert not RollupHour.objects.filter(device=three_hours.device, measurement="t").exists()
        assert RollupHour.objects.filter(device=three_hours.device, measurement="on").count() == 3
        assert aggregate(three_hours.pk, T0, T0 + 3 * HOUR_MS, HOUR_MS)["t"] == []


def test_the_beat_task_refreshes_rollups(device):
    from telemetry.tasks import refresh_rollups

    get_backend().write([Point(device.pk, "t", now_ms() - MINUTE_MS, 1.0)])

    assert refresh_rollups() == {"markers": 1}
    assert RollupMinute.objects.filter(device=device.device).count() == 1


def test_beat_schedules_rollups_and_retention(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert {"telemetry.tasks.refresh_rollups", "telemetry.tasks.apply_retention"} <= tasks
