"""The telemetry backend contract (telemetry/backends/base.py), run against every backend.

"sql" always runs. "iotdb" runs against the IoTDB named by IOTDB_HOST (and IOTDB_PORT), in a
database of its own that is dropped afterwards; without a reachable IoTDB it is skipped.
"""

import os
import random
import socket
import uuid
from io import StringIO

import pytest
from django.core.management import call_command

from telemetry import backends, retention
from telemetry.backends import TelemetryBackend
from telemetry.points import AGGREGATIONS, Point

HOUR = 3_600_000
MINUTE = 60_000
SECOND = 1_000
T0 = 1751450400000  # 2025-07-02T10:00:00Z, on an hour boundary


def iotdb_reachable() -> bool:
    host = os.environ.get("IOTDB_HOST")
    if not host:
        return False
    try:
        socket.create_connection((host, int(os.environ.get("IOTDB_PORT", "6667"))), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def iotdb_database(settings):
    """A database of the test's own in the IoTDB of IOTDB_HOST, dropped afterwards."""
    if not iotdb_reachable():
        pytest.skip("IoTDB not reachable: set IOTDB_HOST")
    settings.IOTDB_DATABASE = f"root.iotflow_test_{uuid.uuid4().hex[:12]}"
    backends._backend.cache_clear()
    yield settings.IOTDB_DATABASE
    with backends.backend_named("iotdb").session() as session:
        session.execute_non_query_statement(f"DELETE DATABASE {settings.IOTDB_DATABASE}")
    backends._backend.cache_clear()


@pytest.fixture(params=["sql", "iotdb"])
def backend(request, settings, db):
    settings.TELEMETRY_BACKEND = request.param
    # Fixed past timestamps below must not fall to raw retention (IoTDB refuses expired points).
    settings.RETENTION_RAW_DAYS = 0
    retention.overrides.clear()
    if request.param == "iotdb":
        request.getfixturevalue("iotdb_database")
    backends._backend.cache_clear()
    yield backends.get_backend()
    backends._backend.cache_clear()


def history(backend, device_id, start=T0, end=T0 + 24 * HOUR, **kwargs):
    return backend.history(device_id, start=start, end=end, **kwargs)


def values(points):
    return [p.value for p in points]


@pytest.fixture
def day(backend, device):
    """Readings every 15 minutes from 10:00 to 11:45, temperature rising by one each time."""
    points = []
    for i in range(8):
        points += [
            Point(device.pk, "temperature", T0 + i * 15 * MINUTE, 20.0 + i),
            Point(device.pk, "humidity", T0 + i * 15 * MINUTE, 50),
        ]
    backend.write(points)
    return device.pk


class TestWriteAndHistory:
    def test_range_includes_start_and_excludes_end(self, backend, day):
        points = history(backend, day, start=T0 + 15 * MINUTE, end=T0 + 45 * MINUTE, fields=["temperature"])

        assert [(p.ts, p.value) for p in points] == [(T0 + 30 * MINUTE, 22.0), (T0 + 15 * MINUTE, 21.0)]

    def test_newest_first_unless_ascending(self, backend, day):
        desc = history(backend, day, fields=["temperature"])
        asc = history(backend, day, fields=["temperature"], descending=False)

        assert values(desc) == [27.0, 26.0, 25.0, 24.0, 23.0, 22.0, 21.0, 20.0]
        assert values(asc) == list(reversed(values(desc)))

    def test_points_of_one_time_are_ordered_by_measurement_and_limited(self, backend, day):
        points = history(backend, day, limit=3)

        assert [(p.ts, p.measurement) for p in points] == [
            (T0 + 105 * MINUTE, "humidity"),
            (T0 + 105 * MINUTE, "temperature"),
            (T0 + 90 * MINUTE, "humidity"),
        ]

    def test_fields_select_measurements(self, backend, day):
        assert len(history(backend, day)) == 16
        assert {p.measurement for p in history(backend, day, fields=["humidity"])} == {"humidity"}
        assert history(backend, day, fields=["nothing"]) == []

    def test_a_point_written_twice_is_stored_once(self, backend, device):
        point = Point(device.pk, "t", T0, 1.5)

        backend.write([point])
        backend.write([point, point])

        assert backend.count(device.pk) == 1

    def test_within_a_batch_the_first_of_one_identity_is_kept(self, backend, device):
        backend.write([Point(device.pk, "t", T0, 1.0), Point(device.pk, "t", T0, 2.0)])

        assert values(history(backend, device.pk)) == [1.0]

    def test_values_keep_their_types(self, backend, device):
        backend.write(
            [
                Point(device.pk, "f", T0, 21.5),
                Point(device.pk, "i", T0, 2**62),
                Point(device.pk, "b", T0, False),
                Point(device.pk, "s", T0, "eco mode"),
            ]
        )

        stored = {p.measurement: p.value for p in history(backend, device.pk)}

        assert stored == {"f": 21.5, "i": 2**62, "b": False, "s": "eco mode"}
        assert [type(stored[k]) for k in "fibs"] == [float, int, bool, str]

    def test_a_batch_of_plain_numbers_keeps_integers_and_floats_apart(self, backend, device):
        values = {"i": 7, "neg": -3, "big": 2**53, "f": 21.5, "tenth": 0.1, "whole": 20.0}
        backend.write([Point(device.pk, name, T0, value) for name, value in values.items()])

        stored = {p.measurement: p.value for p in history(backend, device.pk)}

        assert stored == values
        assert {name: type(value) for name, value in stored.items()} == {k: type(v) for k, v in values.items()}

    def test_a_measurement_may_change_type(self, backend, device):
        backend.write([Point(device.pk, "t", T0, 20), Point(device.pk, "t", T0 + MINUTE, 20.5)])
        backend.write([Point(device.pk, "t", T0 + 2 * MINUTE, "sensor fault")])

        assert values(history(backend, device.pk, descending=False)) == [20, 20.5, "sensor fault"]
        assert backend.latest(device.pk)["t"].value == "sensor fault"
        mean = backend.aggregate(device.pk, ["t"], start=T0, end=T0 + HOUR, window_ms=HOUR, function="mean")
        assert [(b.value, b.count) for b in mean["t"]] == [(20.25, 2)]

    @pytest.mark.parametrize("name", ["engine.oil.temp", "room temp", "température", "湿度", "a_b", "time"])
    def test_any_printable_measurement_name(self, backend, device, name):
        backend.write([Point(device.pk, name, T0, 1.0), Point(device.pk, name, T0 + 1, 3.0)])

        assert {p.measurement for p in history(backend, device.pk, fields=[name])} == {name}
        assert backend.latest(device.pk, [name])[name].value == 3.0
        mean = backend.aggregate(device.pk, [name], start=T0, end=T0 + HOUR, window_ms=HOUR, function="mean")
        assert mean[name][0].value == 2.0
        assert backend.delete(device.pk, fields=[name]) == 2


class TestLatest:
    def test_newest_point_of_each_measurement(self, backend, day):
        backend.write([Point(day, "battery", T0 + 3 * HOUR, 80)])

        latest = backend.latest(day)

        assert {m: (p.ts, p.value) for m, p in latest.items()} == {
            "battery": (T0 + 3 * HOUR, 80),
            "humidity": (T0 + 105 * MINUTE, 50),
            "temperature": (T0 + 105 * MINUTE, 27.0),
        }
        assert list(backend.latest(day, ["humidity"])) == ["humidity"]

    def test_newest_of_a_batch_wins_whatever_its_position(self, backend, device):
        backend.write(
            [Point(device.pk, "t", T0 + 2, 3.0), Point(device.pk, "t", T0, 1.0), Point(device.pk, "t", T0 + 1, 2.0)]
        )

        assert backend.latest(device.pk)["t"].value == 3.0

    def test_a_late_older_point_does_not_replace_it(self, backend, device):
        backend.write([Point(device.pk, "t", T0 + HOUR, 2.0)])
        backend.write([Point(device.pk, "t", T0, 1.0)])

        assert (backend.latest(device.pk)["t"].ts, backend.latest(device.pk)["t"].value) == (T0 + HOUR, 2.0)
        assert backend.count(device.pk) == 2

    def test_devices_are_apart(self, backend, device, other_device):
        backend.write([Point(device.pk, "t", T0, 1.0), Point(other_device.pk, "t", T0 + HOUR, 9.0)])

        assert backend.latest(device.pk)["t"].value == 1.0
        assert backend.latest(other_device.pk)["t"].value == 9.0

    def test_nothing_yet(self, backend, device):
        assert backend.latest(device.pk) == {}
        assert backend.history(device.pk, start=T0, end=T0 + HOUR) == []


class TestAggregate:
    @pytest.mark.parametrize(
        "function,first,second",
        [("mean", 21.5, 25.5), ("min", 20.0, 24.0), ("max", 23.0, 27.0), ("sum", 86.0, 102.0), ("count", 4.0, 4.0)],
    )
    def test_hourly_windows(self, backend, day, function, first, second):
        result = backend.aggregate(day, ["temperature"], start=T0, end=T0 + 3 * HOUR, window_ms=HOUR, function=function)

        assert [(b.ts, b.value, b.count) for b in result["temperature"]] == [
            (T0, first, 4),
            (T0 + HOUR, second, 4),
        ]

    def test_windows_are_aligned_to_the_epoch_not_to_the_start(self, backend, day):
        result = backend.aggregate(
            day, ["temperature"], start=T0 + 30 * MINUTE, end=T0 + 2 * HOUR, window_ms=HOUR, function="mean"
        )

        assert [(b.ts, b.value, b.count) for b in result["temperature"]] == [(T0, 22.5, 2), (T0 + HOUR, 25.5, 4)]

    def test_empty_windows_are_left_out(self, backend, day):
        result = backend.aggregate(
            day, ["temperature"], start=T0 - HOUR, end=T0 + 5 * HOUR, window_ms=30 * MINUTE, function="count"
        )

        assert [b.ts for b in result["temperature"]] == [T0 + i * 30 * MINUTE for i in range(4)]

    def test_text_is_ignored_and_booleans_count_as_zero_and_one(self, backend, device):
        backend.write(
            [
                Point(device.pk, "mode", T0, "eco"),
                Point(device.pk, "on", T0, True),
                Point(device.pk, "on", T0 + MINUTE, False),
                Point(device.pk, "on", T0 + 2 * MINUTE, True),
            ]
        )

        result = backend.aggregate(
            device.pk, ["mode", "on", "absent"], start=T0, end=T0 + HOUR, window_ms=HOUR, function="mean"
        )

        assert result["mode"] == [] and result["absent"] == []
        assert [(b.value, b.count) for b in result["on"]] == [(pytest.approx(2 / 3), 3)]


@pytest.fixture
def uneven(backend, device):
    """Three hours of readings every 7 s (floats, integers, booleans, text), rolled up, then late points.

    The late points arrive after the rollup pass, so on the SQL backend their minutes are read
    from raw points beside the rollups.
    """
    rng = random.Random(11)
    points = []
    for i in range(3 * HOUR // (7 * SECOND)):
        ts = T0 + i * 7 * SECOND
        value = rng.randint(-40, 40) if i % 3 else rng.uniform(-100, 100)
        points += [Point(device.pk, "t", ts, value), Point(device.pk, "on", ts, i % 5 == 0)]
        points.append(Point(device.pk, "mode", ts, "eco"))
    backend.write(points)
    backend.refresh_rollups()
    backend.write([Point(device.pk, "t", T0 + 61 * MINUTE + 3, 1000.0), Point(device.pk, "t", T0 + 5, -1000.5)])
    return device.pk


def separate_calls(backend, device_id, fields, start, end, window, function):
    """What a chart read before ``aggregate_band``: the aggregate, then min, then max, each a call of its own."""

    def run(name):
        return backend.aggregate(device_id, fields, start=start, end=end, window_ms=window, function=name)

    main, lows, highs = run(function), run("min"), run("max")
    return {
        field: [
            (b.ts, pytest.approx(b.value, rel=1e-12), lo.ts, lo.value, hi.ts, hi.value, b.count)
            for b, lo, hi in zip(main[field], lows[field], highs[field], strict=True)
        ]
        for field in fields
    }


class TestAggregateBand:
    @pytest.mark.parametrize("function", AGGREGATIONS)
    @pytest.mark.parametrize(
        "start,end,window",
        [
            pytest.param(T0, T0 + 3 * HOUR, HOUR, id="hourly-rollups"),
            pytest.param(T0 + 90 * SECOND, T0 + 2 * HOUR + 5 * MINUTE + 7 * SECOND, HOUR, id="raw-minutes-hours"),
            pytest.param(T0 + 17 * SECOND, T0 + 2 * HOUR + 31 * SECOND, 10 * MINUTE, id="minutes-raw-edges"),
            pytest.param(T0 - HOUR, T0 + 4 * HOUR, 90 * MINUTE, id="beyond-the-data"),
            pytest.param(T0 + 59 * MINUTE, T0 + 63 * MINUTE, 30 * SECOND, id="raw-only"),
        ],
    )
    def test_equals_the_aggregate_and_its_min_and_max(self, backend, uneven, function, start, end, window):
        fields = ["t", "on", "mode", "absent"]

        bands = backend.aggregate_band(uneven, fields, start=start, end=end, window_ms=window, function=function)

        assert list(bands) == fields
        assert {
            field: [(b.ts, b.value, b.ts, b.minimum, b.ts, b.maximum, b.count) for b in found]
            for field, found in bands.items()
        } == separate_calls(backend, uneven, fields, start, end, window, function)
        assert bands["t"] and bands["on"], "the ranges hold numbers and booleans"
        assert bands["mode"] == [] and bands["absent"] == []

    def test_a_window_holds_its_extremes_and_its_value(self, backend, day):
        bands = backend.aggregate_band(
            day, ["temperature"], start=T0, end=T0 + 3 * HOUR, window_ms=HOUR, function="mean"
        )

        assert [(b.ts, b.value, b.minimum, b.maximum, b.count) for b in bands["temperature"]] == [
            (T0, 21.5, 20.0, 23.0, 4),
            (T0 + HOUR, 25.5, 24.0, 27.0, 4),
        ]

    @pytest.mark.parametrize("function", ["min", "sum"])
    def test_the_default_of_three_aggregate_calls_answers_alike(self, backend, day, function):
        """What a backend without stored partials inherits gives the same answer, only slower."""
        kwargs = {"start": T0 - HOUR, "end": T0 + 3 * HOUR, "window_ms": 30 * MINUTE, "function": function}

        inherited = TelemetryBackend.aggregate_band(backend, day, ["temperature", "humidity", "absent"], **kwargs)

        assert inherited == backend.aggregate_band(day, ["temperature", "humidity", "absent"], **kwargs)
        assert [b.maximum for b in inherited["humidity"]] == [50.0] * 4


class TestDelete:
    def test_everything(self, backend, day):
        assert backend.delete(day) == 16
        assert backend.count(day) == 0
        assert backend.latest(day) == {}

    def test_a_range_and_latest_falls_back(self, backend, day):
        assert backend.delete(day, start=T0 + HOUR, end=T0 + 2 * HOUR) == 8

        latest = backend.latest(day)
        assert (latest["temperature"].ts, latest["temperature"].value) == (T0 + 45 * MINUTE, 23.0)
        assert backend.count(day) == 8

    def test_one_field(self, backend, day):
        assert backend.delete(day, fields=["humidity"]) == 8
        assert list(backend.latest(day)) == ["temperature"]

    def test_up_to_a_time(self, backend, day):
        assert backend.delete(day, end=T0 + 30 * MINUTE) == 4
        assert history(backend, day, descending=False)[0].ts == T0 + 30 * MINUTE

    def test_other_devices_are_untouched(self, backend, day, other_device):
        backend.write([Point(other_device.pk, "t", T0, 1.0)])

        backend.delete(day)

        assert backend.count(other_device.pk) == 1

    def test_a_deleted_device_leaves_nothing(self, backend, day):
        backend.delete_device(day)

        assert backend.count(day) == 0
        assert backend.latest(day) == {}


def test_count(backend, day, other_device):
    backend.write([Point(other_device.pk, "t", T0, 1.0)])

    assert backend.count(day) == 16
    assert backend.count() == 17


def test_health(backend):
    health = backend.health()

    assert health["status"] == "healthy"
    assert health["backend"] == backend.name


def test_telemetry_copies_to_iotdb_and_back(settings, iotdb_database, device, other_device):
    """``migrate_telemetry`` in small batches (several points share each timestamp), both ways."""
    settings.RETENTION_RAW_DAYS = 0
    retention.overrides.clear()
    sql, iotdb = backends.backend_named("sql"), backends.backend_named("iotdb")
    ids = (device.pk, other_device.pk)
    sql.write([Point(d, m, T0 + i * MINUTE, float(i)) for d in ids for m in ("a", "b.c", "on") for i in range(30)])
    sql.refresh_rollups()

    def everything(backend, device_id):
        return backend.history(device_id, start=T0, end=T0 + 24 * HOUR, limit=10_000, descending=False)

    original = {d: everything(sql, d) for d in ids}

    call_command("migrate_telemetry", "--from", "sql", "--to", "iotdb", "--batch", "7", stdout=StringIO())
    assert {d: everything(iotdb, d) for d in ids} == original

    for d in ids:
        sql.delete(d)
    call_command("migrate_telemetry", "--from", "iotdb", "--to", "sql", "--batch", "5", stdout=StringIO())
    assert {d: everything(sql, d) for d in ids} == original
