"""The IoTDB backend's parts that need no server: names, types, tablets, statements, results, failures.

The backend's behaviour against a live IoTDB is in test_backend_contract.py (run with IOTDB_HOST).
Here, besides the pure mapping, an IoTDB that does not answer (a closed local port) is real.
"""

import re
import socket

import numpy as np
import pandas as pd
import pytest
from iotdb.utils.IoTDBConstants import TSDataType

from telemetry import backends, retention
from telemetry.backends import BackendUnavailable
from telemetry.backends import iotdb_schema as schema
from telemetry.backends.iotdb import IoTDBBackend
from telemetry.backends.iotdb_tiers import desired_ttl, read_plan, rollup_target, ttl_changes
from telemetry.models import RollupWatermark
from telemetry.points import AGGREGATIONS, Point
from telemetry.rollups import HOUR_MS, MINUTE_MS, TIER_MS, Partial, Segment, finish, floor_to
from telemetry.timeparse import now_ms

T0 = 1751450400000  # 2025-07-02T10:00:00Z
PATHS = schema.Paths("root.iotflow")
DEVICE = "root.iotflow.devices.d_7"

TRICKY_NAMES = [
    "temperature",
    "engine.temp",
    "engine.oil.pressure",
    "room temp",
    "température",
    "湿度",
    "🌡️ reading",
    "a_b",
    "a__b",
    "_2e_",
    "a.b_c.d",
    "`quoted`",
    "x-y+z/w*",
    "time",
    "root",
    "123",
    "Temperature",
]


class TestNames:
    @pytest.mark.parametrize("name", TRICKY_NAMES)
    def test_escaping_round_trips_to_a_plain_identifier(self, name):
        escaped = schema.escape(name)

        assert re.fullmatch(r"[A-Za-z0-9_]+", escaped)
        assert schema.unescape(escaped) == name

    def test_different_names_never_share_an_escape(self):
        escaped = [schema.escape(name) for name in TRICKY_NAMES]

        assert len(set(escaped)) == len(TRICKY_NAMES)

    def test_readable_escapes(self):
        assert schema.escape("engine.temp") == "engine_2e_temp"
        assert schema.escape("a_b") == "a__b"
        assert schema.escape("température") == "temp_e9_rature"

    def test_case_is_kept(self):
        assert schema.escape("Temperature") != schema.escape("temperature")

    @pytest.mark.parametrize(
        "value,code,data_type",
        [
            (21.5, "f", TSDataType.DOUBLE),
            (21, "i", TSDataType.INT64),
            (True, "b", TSDataType.BOOLEAN),
            (False, "b", TSDataType.BOOLEAN),
            ("eco", "s", TSDataType.TEXT),
        ],
    )
    def test_each_type_has_its_series(self, value, code, data_type):
        assert schema.type_code(value) == code
        assert schema.TYPE_CODES[code] == data_type
        name = schema.series_name("engine.temp", code)
        assert name == f"{code}_engine_2e_temp"
        assert schema.parse_series(name) == ("engine.temp", code)

    def test_a_measurement_spans_one_series_per_type(self):
        assert schema.series_of(["t"]) == ["f_t", "i_t", "b_t", "s_t"]
        assert schema.series_of(["t", "h"], schema.NUMERIC_CODES) == ["f_t", "i_t", "f_h", "i_h"]

    def test_rollup_series_names(self):
        assert schema.stat_name("engine.temp", "n") == "n_engine_2e_temp"
        assert schema.parse_stat("sum_engine_2e_temp") == ("engine.temp", "sum")
        with pytest.raises(ValueError):
            schema.parse_stat("f_temperature")
        with pytest.raises(ValueError):
            schema.parse_series("n_temperature")

    def test_paths(self):
        assert PATHS.device(7) == DEVICE
        assert PATHS.rollup("1h", 7) == "root.iotflow.rollup_1h.d_7"
        assert PATHS.device_id("root.iotflow.devices.d_7") == 7
        assert PATHS.device_id("root.iotflow.rollup_1m.d_12") == 12
        assert PATHS.device_id("root.other.devices.d_7") is None
        assert PATHS.device_id("root.iotflow.devices.d_7.f_t") is None


class TestTablets:
    def test_one_tablet_per_device_with_a_row_per_timestamp(self):
        points = [
            Point(7, "t", T0 + 1000, 21.5),
            Point(7, "h", T0, 50),
            Point(7, "t", T0, 21.0),
            Point(7, "mode", T0 + 1000, "eco"),
            Point(8, "on", T0, True),
        ]

        tablets = schema.point_tablets(points, PATHS)

        first, second = tablets
        assert first.device_path == DEVICE
        assert first.series == ["f_t", "i_h", "s_mode"]
        assert first.types == [TSDataType.DOUBLE, TSDataType.INT64, TSDataType.TEXT]
        assert first.timestamps == [T0, T0 + 1000]
        assert first.rows == [[21.0, 50, None], [21.5, None, "eco"]]
        assert second.device_path == "root.iotflow.devices.d_8"
        assert (second.series, second.types, second.rows) == (["b_on"], [TSDataType.BOOLEAN], [[True]])

    def test_a_type_change_writes_a_second_series_not_an_error(self):
        tablets = schema.point_tablets([Point(7, "t", T0, 20), Point(7, "t", T0 + 1, 20.5)], PATHS)

        assert tablets[0].series == ["f_t", "i_t"]
        assert tablets[0].rows == [[None, 20], [20.5, None]]

    def test_of_two_points_with_one_identity_the_first_is_written(self):
        tablets = schema.point_tablets([Point(7, "t", T0, 1.0), Point(7, "t", T0, 2.0)], PATHS)

        assert tablets[0].rows == [[1.0]]

    def test_tablets_serialise_with_the_client(self):
        points = [Point(7, "t", T0 + i, float(i)) for i in range(3)] + [Point(7, "mode", T0 + 1, "eco")]
        tablet = schema.point_tablets(points, PATHS)[0].tablet()

        assert tablet.get_insert_target_name() == DEVICE
        assert tablet.get_row_number() == 3
        assert len(tablet.get_binary_timestamps()) == 3 * 8
        assert tablet.get_binary_values()  # packs values and the null bitmap of "mode"

    def test_rollup_tablet(self):
        parts = [("t", T0, Partial(2, 1.0, 3.0, 4.0)), ("t", T0 + MINUTE_MS, Partial(1, 5.0, 5.0, 5.0))]

        rows = schema.rollup_tablet("root.iotflow.rollup_1m.d_7", parts)

        assert rows.series == ["hi_t", "lo_t", "n_t", "sum_t"]
        assert rows.types == [TSDataType.DOUBLE, TSDataType.DOUBLE, TSDataType.INT64, TSDataType.DOUBLE]
        assert rows.rows == [[3.0, 1.0, 2, 4.0], [5.0, 5.0, 1, 5.0]]
        assert schema.rollup_tablet("root.iotflow.rollup_1m.d_7", []) is None


class TestStatements:
    def test_history(self):
        statement = schema.history_statement(DEVICE, ["f_t", "i_t"], T0, T0 + HOUR_MS, 10, True)

        assert statement == (
            f"SELECT f_t, i_t FROM {DEVICE} WHERE time >= {T0} AND time < {T0 + HOUR_MS} ORDER BY TIME DESC LIMIT 10"
        )
        assert schema.history_statement(DEVICE, None, None, None, 5, False) == (
            f"SELECT * FROM {DEVICE} ORDER BY TIME ASC LIMIT 5"
        )

    def test_latest(self):
        assert schema.latest_statement(DEVICE, None) == f"SELECT LAST * FROM {DEVICE}"
        assert schema.latest_statement(DEVICE, ["f_t"]) == f"SELECT LAST f_t FROM {DEVICE}"

    def test_group_by_windows_are_aligned_to_the_epoch(self):
        statement = schema.aggregate_statement(
            DEVICE, [("count", "f_t")], T0 + 30 * MINUTE_MS, T0 + 2 * HOUR_MS + 1, HOUR_MS
        )

        assert statement == (
            f"SELECT count(f_t) FROM {DEVICE} WHERE time >= {T0 + 30 * MINUTE_MS} AND time < {T0 + 2 * HOUR_MS + 1}"
            f" GROUP BY ([{T0}, {T0 + 3 * HOUR_MS}), 3600000ms)"
        )

    def test_selections(self):
        assert schema.raw_selections(["f_t"]) == [
            ("count", "f_t"),
            ("min_value", "f_t"),
            ("max_value", "f_t"),
            ("sum", "f_t"),
        ]
        assert schema.rollup_selections(["t"]) == [
            ("sum", "n_t"),
            ("min_value", "lo_t"),
            ("max_value", "hi_t"),
            ("sum", "sum_t"),
        ]

    def test_count(self):
        assert schema.count_statement(DEVICE, None, None, None) == f"SELECT count(*) FROM {DEVICE}"
        assert schema.count_statement(DEVICE, ["f_t", "s_m"], T0, None) == (
            f"SELECT count(f_t), count(s_m) FROM {DEVICE} WHERE time >= {T0}"
        )


class TestResults:
    def test_plain_values(self):
        assert schema.plain(np.int64(5)) == 5 and type(schema.plain(np.int64(5))) is int
        assert schema.plain(np.float64(2.5)) == 2.5
        assert schema.plain(np.bool_(True)) is True
        assert schema.plain(b"eco") == "eco"
        assert schema.plain(pd.NA) is None
        assert schema.plain(float("nan")) is None
        assert schema.plain(None) is None

    def test_history_rows_become_points_in_contract_order(self):
        columns = [f"{DEVICE}.f_t", f"{DEVICE}.i_t", f"{DEVICE}.s_engine_2e_mode"]
        rows = [(T0 + 1000, [None, 21, "eco"]), (T0, [20.5, None, None])]

        points = schema.points_from_rows(7, columns, rows, limit=10, descending=True)

        assert points == [
            Point(7, "engine.mode", T0 + 1000, "eco"),
            Point(7, "t", T0 + 1000, 21),
            Point(7, "t", T0, 20.5),
        ]
        assert schema.points_from_rows(7, columns, rows, limit=2, descending=False) == [
            Point(7, "t", T0, 20.5),
            Point(7, "engine.mode", T0 + 1000, "eco"),
        ]

    def test_last_rows_give_the_newest_of_each_measurement_in_its_type(self):
        rows = [
            (T0, [f"{DEVICE}.i_t", "20", "INT64"]),
            (T0 + 1000, [f"{DEVICE}.f_t", "20.5", "DOUBLE"]),
            (T0, [f"{DEVICE}.b_on", "true", "BOOLEAN"]),
            (T0, [f"{DEVICE}.s_mode", "eco mode", "TEXT"]),
            (T0, [f"{DEVICE}.i_big", "9223372036854775807", "INT64"]),
            (T0, [f"{DEVICE}.f_tiny", "1.0E-10", "DOUBLE"]),
        ]

        latest = schema.latest_from_rows(7, rows)

        assert latest["t"] == Point(7, "t", T0 + 1000, 20.5)
        assert latest["on"].value is True
        assert latest["mode"].value == "eco mode"
        assert latest["big"].value == 2**63 - 1
        assert latest["tiny"].value == 1e-10

    def test_aggregate_rows_merge_the_type_series_of_a_measurement(self):
        columns = [
            f"{function}({DEVICE}.{name})" for name in ("f_t", "i_t") for function in schema.RAW_FUNCTIONS.values()
        ]
        rows = [(T0, [2, 1.5, 2.5, 4.0, 1, 7, 7, 7.0]), (T0 + HOUR_MS, [0, None, None, None, 1, 3, 3, 3.0])]

        parts = schema.raw_parts(columns, rows)
        answer = finish(["t"], parts, HOUR_MS, "mean")

        assert [(b.ts, b.value, b.count) for b in answer["t"]] == [(T0, 11.0 / 3, 3), (T0 + HOUR_MS, 3.0, 1)]

    def test_rollup_rows(self):
        path = "root.iotflow.rollup_1h.d_7"
        columns = [f"{f}({path}.{name})" for f, name in schema.rollup_selections(["engine.temp"])]
        rows = [(T0, [4.0, -1.0, 9.0, 12.0]), (T0 + HOUR_MS, [None, None, None, None])]

        assert schema.rollup_parts(columns, rows) == [("engine.temp", T0, Partial(4, -1.0, 9.0, 12.0))]

    def test_booleans_aggregate_as_zero_and_one(self):
        columns = [f"{DEVICE}.b_on"]
        rows = [(T0, [True]), (T0 + 1, [False]), (T0 + 2, [True]), (T0 + HOUR_MS, [None])]

        answer = finish(["on"], schema.bool_parts(columns, rows, HOUR_MS), HOUR_MS, "mean")

        assert [(b.ts, b.value, b.count) for b in answer["on"]] == [(T0, 2 / 3, 3)]

    def test_counts_and_ttl_rules(self):
        assert schema.sum_counts([(0, [3, None, 4])]) == 7
        rules = schema.ttl_rules([(0, ["root.iotflow.devices.**", 7776000000]), (0, ["root.x.**", "INF"])])
        assert rules == {"root.iotflow.devices.**": 7776000000, "root.x.**": None}

    @pytest.mark.parametrize(
        "error,missing,exists,ttl",
        [
            ("508: Timeseries [root.iotflow.devices.d_1.*] does not exist", True, False, False),
            ("903: root.iotflow has already been created as database", False, True, False),
            ("305: Insertion time [1] is less than ttl time bound [2]", False, False, True),
            ("500: internal error", False, False, False),
        ],
    )
    def test_error_answers(self, error, missing, exists, ttl):
        assert schema.names_missing(error) is missing
        assert schema.database_exists(error) is exists
        assert schema.past_ttl(error) is ttl


class TestRetentionRules:
    def test_ttl_rules_follow_settings_and_overrides(self):
        default = retention.Policy.of(90, 365, 0)
        overrides = {3: retention.Policy.of(7, 365, 0), 4: retention.Policy.of(0, 0, 0)}

        rules = desired_ttl(PATHS, default, overrides)

        day = retention.DAY_MS
        assert rules == {
            "root.iotflow.devices.**": 90 * day,
            "root.iotflow.rollup_1m.**": 365 * day,
            "root.iotflow.devices.d_3": 7 * day,
            "root.iotflow.devices.d_4": schema.LONG_MAX,
            "root.iotflow.rollup_1m.d_4": schema.LONG_MAX,
        }

    def test_only_changed_rules_are_sent_and_only_ours_removed(self):
        current = {"root.iotflow.devices.**": 1, "root.iotflow.devices.d_9": 5, "root.other.**": 3}
        desired = {"root.iotflow.devices.**": 1, "root.iotflow.rollup_1m.**": 2}

        assert ttl_changes(current, desired, "root.iotflow") == (
            ["root.iotflow.devices.d_9"],
            {"root.iotflow.rollup_1m.**": 2},
        )

    def test_rollups_are_due_a_day_before_raw_points_expire(self):
        now = T0 + 90 * retention.DAY_MS + 25 * MINUTE_MS
        target = rollup_target(retention.Policy.of(90, 365, 0), now)

        assert target == T0 + retention.DAY_MS
        assert rollup_target(retention.Policy.of(0, 0, 0), now) == schema.LONG_MIN


class TestReadPlan:
    def test_raw_points_answer_all_before_any_rollup(self):
        assert read_plan(T0, T0 + 3 * HOUR_MS, HOUR_MS, None, schema.LONG_MIN) == [Segment("raw", T0, T0 + 3 * HOUR_MS)]

    def test_rollups_answer_up_to_the_watermark_raw_points_after(self):
        start, end = T0 + 90_000, T0 + 5 * HOUR_MS + 7_000

        assert read_plan(start, end, HOUR_MS, T0 + 3 * HOUR_MS, schema.LONG_MIN) == [
            Segment("raw", start, T0 + 2 * MINUTE_MS),
            Segment("1m", T0 + 2 * MINUTE_MS, T0 + HOUR_MS),
            Segment("1h", T0 + HOUR_MS, T0 + 3 * HOUR_MS),
            Segment("raw", T0 + 3 * HOUR_MS, end),
        ]

    def test_expired_edges_are_not_read(self):
        start = T0 + 30_000
        through = T0 + 2 * HOUR_MS

        assert read_plan(start, T0 + HOUR_MS, MINUTE_MS, through, T0 + 45_000) == [
            Segment("raw", T0 + 45_000, T0 + MINUTE_MS),
            Segment("1m", T0 + MINUTE_MS, T0 + HOUR_MS),
        ]
        assert read_plan(start, T0 + HOUR_MS, MINUTE_MS, through, T0 + MINUTE_MS) == [
            Segment("1m", T0 + MINUTE_MS, T0 + HOUR_MS)
        ]


GROUPED = re.compile(
    r"SELECT (?P<selected>.+) FROM (?P<path>\S+) WHERE time >= (?P<start>-?\d+) AND time < (?P<end>-?\d+) "
    r"GROUP BY \(\[(?P<lo>-?\d+), (?P<hi>-?\d+)\), (?P<window>\d+)ms\)"
)
STAT_FIELDS = {"n": "count", "lo": "minimum", "hi": "maximum", "sum": "total"}
IOTDB_FUNCTIONS = {"sum": sum, "min_value": min, "max_value": max}


class AnsweringIoTDB(IoTDBBackend):
    """The query layer of an IoTDB holding numeric raw series of one device and their rollups.

    It answers the statements the backend sends (series listing, GROUP BY over raw and rollup
    series) as IoTDB does, and records them; everything above the query layer is the backend's own.
    """

    def __init__(self, device_id: int, series: dict[str, list[tuple[int, float]]]) -> None:
        super().__init__()
        self.device_path = self.paths.device(device_id)
        self.raw = series
        self.rollups: dict[str, dict[tuple[str, int], Partial]] = {}
        for tier, size in TIER_MS.items():
            values: dict[tuple[str, int], list[float]] = {}
            for name, points in series.items():
                for ts, value in points:
                    values.setdefault((schema.parse_series(name)[0], floor_to(ts, size)), []).append(value)
            self.rollups[tier] = {key: Partial.of(found) for key, found in values.items()}
        self.statements: list[str] = []

    def query(self, statement: str) -> tuple[list[str], list[schema.Row]]:
        self.statements.append(statement)
        if statement.startswith("SHOW TIMESERIES"):
            return ["Timeseries"], [(0, [f"{self.device_path}.{name}"]) for name in sorted(self.raw)]
        query = GROUPED.fullmatch(statement)
        assert query, statement
        path, start, end, window = query["path"], int(query["start"]), int(query["end"]), int(query["window"])
        calls = re.findall(r"(\w+)\(([^()]+)\)", query["selected"])
        rows = []
        for ts in range(int(query["lo"]), int(query["hi"]), window):
            lo, hi = max(ts, start), min(ts + window, end)
            rows.append((ts, [self.cell(path, function, column, lo, hi) for function, column in calls]))
        return [f"{function}({path}.{column})" for function, column in calls], rows

    def cell(self, path: str, function: str, column: str, start: int, end: int) -> float | None:
        if path == self.device_path:
            values = [value for ts, value in self.raw.get(column, []) if start <= ts < end]
        else:
            tier = "1m" if path.startswith(f"{self.paths.database}.rollup_1m.") else "1h"
            measurement, stat = schema.parse_stat(column)
            values = [
                getattr(partial, STAT_FIELDS[stat])
                for (name, ts), partial in self.rollups[tier].items()
                if name == measurement and start <= ts < end
            ]
        if function == "count":
            return len(values)
        return IOTDB_FUNCTIONS[function](values) if values else None


class TestAggregateBand:
    @pytest.fixture
    def answering(self, settings, db):
        """Floats and integers of "t" every 7 s for four hours; rollups hold the first three."""
        settings.RETENTION_RAW_DAYS = 0
        retention.overrides.clear()
        RollupWatermark.objects.create(device_id=7, through=T0 + 3 * HOUR_MS)
        floats = [(T0 + i * 7_000, (i * 37 % 101) / 4) for i in range(0, 4 * 3600 // 7, 2)]
        integers = [(T0 + i * 7_000, float(i * 13 % 41 - 20)) for i in range(1, 4 * 3600 // 7, 2)]
        return AnsweringIoTDB(7, {"f_t": floats, "i_t": integers})

    @pytest.mark.parametrize("function", AGGREGATIONS)
    def test_one_read_answers_the_aggregate_and_its_min_and_max(self, answering, function):
        start, end, window = T0 + 90_000, T0 + 3 * HOUR_MS + 20 * MINUTE_MS + 3_000, HOUR_MS

        bands = answering.aggregate_band(7, ["t"], start=start, end=end, window_ms=window, function=function)
        band_statements, answering.statements = answering.statements, []
        main, lows, highs = [
            answering.aggregate(7, ["t"], start=start, end=end, window_ms=window, function=name)["t"]
            for name in (function, "min", "max")
        ]
        one_aggregate = answering.statements[: len(answering.statements) // 3]

        assert band_statements == one_aggregate
        assert any("rollup_1h" in s for s in band_statements) and any("rollup_1m" in s for s in band_statements)
        assert [(b.ts, b.value, b.minimum, b.maximum, b.count) for b in bands["t"]] == [
            (b.ts, b.value, lo.value, hi.value, b.count) for b, lo, hi in zip(main, lows, highs, strict=True)
        ]
        assert len(bands["t"]) == 4


@pytest.fixture
def unreachable(settings):
    """An IoTDB address where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.TELEMETRY_BACKEND = "iotdb"
    settings.IOTDB_NODE_URLS = [f"127.0.0.1:{port}"]
    settings.IOTDB_POOL_WAIT_MS = 100
    backends._backend.cache_clear()
    yield backends.get_backend()
    backends._backend.cache_clear()


class TestUnreachable:
    def test_writes_raise_backend_unavailable_with_the_address(self, unreachable, device):
        with pytest.raises(BackendUnavailable, match=r"IoTDB at 127\.0\.0\.1:\d+ is unreachable"):
            unreachable.write([Point(device.pk, "t", now_ms(), 1.0)])

    def test_reads_raise_backend_unavailable(self, unreachable, device):
        with pytest.raises(BackendUnavailable):
            unreachable.latest(device.pk)
        with pytest.raises(BackendUnavailable):
            unreachable.history(device.pk, start=T0, end=T0 + HOUR_MS)

    def test_health_is_unhealthy(self, unreachable):
        health = unreachable.health()

        assert health["status"] == "unhealthy"
        assert health["backend"] == "iotdb"
        assert health["error"]

    def test_http_ingest_answers_503_and_stores_nothing(self, unreachable, device):
        response = device.client().post("/api/v1/telemetry", {"data": {"t": 1.0}}, format="json")

        assert response.status_code == 503
        assert response.json() == {"detail": "Telemetry storage is unavailable; nothing was stored. Retry later."}

    def test_status_endpoint_reports_it(self, unreachable, client, db):
        response = client.get("/api/v1/telemetry/status")

        assert response.status_code == 503
        assert response.json()["backend"]["backend"] == "iotdb"

    def test_a_device_is_deleted_even_while_iotdb_is_down(
        self, unreachable, device, django_capture_on_commit_callbacks
    ):
        """Its series are purged by a retried task, or by the retention run's sweep of orphaned series."""
        from devices.models import Device

        with django_capture_on_commit_callbacks(execute=True):
            device.device.delete()

        assert not Device.objects.filter(pk=device.pk).exists()

    def test_mqtt_batch_is_not_acknowledged(self, unreachable, device):
        """The consumer holds a batch whose write raised BackendUnavailable and retries it (telemetry.mqtt)."""
        from telemetry.mqtt import Incoming, process_batch

        message = Incoming(f"iotflow/devices/{device.pk}/telemetry", b'{"data": {"t": 1.5}}', 1, 1, 0)

        with pytest.raises(BackendUnavailable):
            process_batch([message])


class TestWriteBounds:
    def test_points_past_raw_retention_are_left_out_and_late_ones_marked(self, settings, db):
        settings.RETENTION_RAW_DAYS = 90
        retention.overrides.clear()
        backend = IoTDBBackend()
        now = now_ms()
        day = retention.DAY_MS
        points = [
            Point(1, "t", now - 91 * day, 1.0),  # expired: IoTDB would refuse it
            Point(1, "t", now - 89 * day - HOUR_MS, 2.0),  # its minute is already rolled up
            Point(1, "mode", now - 89 * day - HOUR_MS, "eco"),  # text has no rollups
            Point(1, "t", now - HOUR_MS, 3.0),
        ]

        kept, late = backend._admissible(points)

        assert [p.value for p in kept] == [2.0, "eco", 3.0]
        assert late == {(1, "t", (now - 89 * day - HOUR_MS) // MINUTE_MS * MINUTE_MS)}

    def test_kept_for_ever_keeps_everything(self, settings, db):
        settings.RETENTION_RAW_DAYS = 0
        retention.overrides.clear()

        kept, late = IoTDBBackend()._admissible([Point(1, "t", T0 - 10 * 365 * retention.DAY_MS, 1.0)])

        assert len(kept) == 1 and not late


class TestMigrateTelemetry:
    def test_batches_end_on_a_whole_timestamp(self):
        from telemetry.management.commands.migrate_telemetry import complete

        def ts(item):
            return item[0]

        assert complete([(1, "a"), (2, "a")], 5, ts) == ([(1, "a"), (2, "a")], 2)
        assert complete([(1, "a"), (2, "a"), (2, "b")], 3, ts) == ([(1, "a")], 1)
        assert complete([(2, "a"), (2, "b")], 2, ts) == ([], None)
        assert complete([], 2, ts) == ([], None)

    def test_an_unreachable_target_stops_the_copy_where_it_can_resume(self, unreachable, settings, device):
        from django.core.management import CommandError, call_command

        from telemetry.models import TelemetryCopy

        settings.TELEMETRY_BACKEND = "sql"
        backends.get_backend().write([Point(device.pk, "t", now_ms() - HOUR_MS, 1.0)])

        with pytest.raises(CommandError, match="Run the command again to resume"):
            call_command("migrate_telemetry", "--from", "sql", "--to", "iotdb")

        state = TelemetryCopy.objects.get(source="sql", target="iotdb")
        assert (state.stage, state.device_id, state.after, state.copied) == ("points", device.pk, None, 0)

    def test_source_and_target_must_differ(self, db):
        from django.core.management import CommandError, call_command

        with pytest.raises(CommandError, match="different backends"):
            call_command("migrate_telemetry", "--from", "sql", "--to", "sql")
