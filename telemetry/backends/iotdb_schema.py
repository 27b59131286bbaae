"""How IoTFlow's telemetry maps onto IoTDB, as pure functions: names, types, tablets, statements, results.

Paths: ``<database>.devices.d_<id>.<series>`` holds raw points (``IOTDB_DATABASE``, by default
``root.iotflow``); ``<database>.rollup_1m.d_<id>`` and ``<database>.rollup_1h.d_<id>`` the rollups.

Series names. A measurement name may hold any printable character (dots from flattened objects,
spaces, any script), but an IoTDB node name may not, so names are escaped reversibly: ASCII
letters and digits stay, ``_`` becomes ``__``, and every other character becomes ``_<hex code
point>_`` (``engine.temp`` → ``engine_2e_temp``, ``température`` → ``temp_e9_rature``).

Types. IoTDB fixes a series' type when it is created, while a measurement's JSON values may
change type (``20`` then ``20.5``). So each type gets its own series, named by a prefix:
``f_`` DOUBLE (floats), ``i_`` INT64 (integers), ``b_`` BOOLEAN, ``s_`` TEXT. A measurement is
the union of its series: reads merge them, so nothing is rejected and every value keeps its
type. Rollups merge the numeric types of a measurement: ``n_`` (count, INT64), ``lo_``, ``hi_``,
``sum_`` (DOUBLE) followed by the escaped measurement name.
"""

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from iotdb.utils.IoTDBConstants import TSDataType
from iotdb.utils.Tablet import Tablet

from telemetry.points import Point, Value
from telemetry.rollups import Part, Partial, floor_to

SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
TYPE_CODES = {"f": TSDataType.DOUBLE, "i": TSDataType.INT64, "b": TSDataType.BOOLEAN, "s": TSDataType.TEXT}
NUMERIC_CODES = ("f", "i")
STATS = {"n": TSDataType.INT64, "lo": TSDataType.DOUBLE, "hi": TSDataType.DOUBLE, "sum": TSDataType.DOUBLE}
# The IoTDB aggregation giving each statistic: from raw points, and from stored rollups.
RAW_FUNCTIONS = {"n": "count", "lo": "min_value", "hi": "max_value", "sum": "sum"}
STAT_FUNCTIONS = {"n": "sum", "lo": "min_value", "hi": "max_value", "sum": "sum"}
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def escape(measurement: str) -> str:
    """A measurement name as a string of ``[A-Za-z0-9_]`` that ``unescape`` turns back."""
    out = []
    for char in measurement:
        if char in SAFE:
            out.append(char)
        elif char == "_":
            out.append("__")
        else:
            out.append(f"_{ord(char):x}_")
    return "".join(out)


def unescape(name: str) -> str:
    out, i = [], 0
    while i < len(name):
        char = name[i]
        if char != "_":
            out.append(char)
            i += 1
        elif name.startswith("__", i):
            out.append("_")
            i += 2
        else:
            end = name.index("_", i + 1)
            out.append(chr(int(name[i + 1 : end], 16)))
            i = end + 1
    return "".join(out)


def type_code(value: Value) -> str:
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "f"
    return "s"


def series_name(measurement: str, code: str) -> str:
    return f"{code}_{escape(measurement)}"


def parse_series(name: str) -> tuple[str, str]:
    """``(measurement, type code)`` of a raw series name."""
    code, sep, rest = name.partition("_")
    if not sep or code not in TYPE_CODES:
        raise ValueError(f"not an IoTFlow series: {name!r}")
    return unescape(rest), code


def series_of(fields: Iterable[str], codes: Iterable[str] = tuple(TYPE_CODES)) -> list[str]:
    """Every series that may hold the given measurements (one per type)."""
    codes = list(codes)
    return [series_name(field, code) for field in fields for code in codes]


def stat_name(measurement: str, stat: str) -> str:
    return f"{stat}_{escape(measurement)}"


def parse_stat(name: str) -> tuple[str, str]:
    """``(measurement, statistic)`` of a rollup series name."""
    stat, sep, rest = name.partition("_")
    if not sep or stat not in STATS:
        raise ValueError(f"not an IoTFlow rollup series: {name!r}")
    return unescape(rest), stat


@dataclass(frozen=True, slots=True)
class Paths:
    """Where a database's telemetry lives."""

    database: str

    def device(self, device_id: int) -> str:
        return f"{self.database}.devices.d_{device_id}"

    def rollup(self, tier: str, device_id: int) -> str:
        return f"{self.database}.rollup_{tier}.d_{device_id}"

    def devices_pattern(self) -> str:
        return f"{self.database}.devices.**"

    def device_id(self, path: str) -> int | None:
        """The device id of a raw or rollup device path, None for other paths."""
        match = re.fullmatch(rf"{re.escape(self.database)}\.(?:devices|rollup_1m|rollup_1h)\.d_(\d+)", path)
        return int(match.group(1)) if match else None


def last_node(path: str) -> str:
    return path.rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class TabletRows:
    """One device's share of a write, shaped for ``Tablet``: one row per timestamp, one column per series."""

    device_path: str
    series: list[str]
    types: list[TSDataType]
    timestamps: list[int]
    rows: list[list[Any]]

    def tablet(self) -> Tablet:
        return Tablet(self.device_path, self.series, self.types, self.rows, self.timestamps)


def point_tablets(points: Iterable[Point], paths: Paths) -> list[TabletRows]:
    """Points grouped into one tablet per device; of several points with one identity the first is kept."""
    cells: dict[int, dict[tuple[int, str], Value]] = {}
    for point in points:
        key = (point.ts, series_name(point.measurement, type_code(point.value)))
        cells.setdefault(point.device_id, {}).setdefault(key, point.value)
    tablets = []
    for device_id in sorted(cells):
        tablets.append(_tablet(paths.device(device_id), cells[device_id], lambda name: TYPE_CODES[name[0]]))
    return tablets


def rollup_tablet(device_path: str, parts: Iterable[Part]) -> TabletRows | None:
    """Rollup parts of one device and tier as a tablet of ``n_``/``lo_``/``hi_``/``sum_`` series."""
    cells: dict[tuple[int, str], Any] = {}
    for measurement, ts, partial in parts:
        values = {"n": partial.count, "lo": partial.minimum, "hi": partial.maximum, "sum": partial.total}
        for stat, value in values.items():
            cells[(ts, stat_name(measurement, stat))] = value
    if not cells:
        return None
    return _tablet(device_path, cells, lambda name: STATS[name.partition("_")[0]])


def _tablet(device_path: str, cells: dict[tuple[int, str], Any], type_of) -> TabletRows:
    series = sorted({name for _, name in cells})
    timestamps = sorted({ts for ts, _ in cells})
    column = {name: i for i, name in enumerate(series)}
    row_of = {ts: i for i, ts in enumerate(timestamps)}
    rows: list[list[Any]] = [[None] * len(series) for _ in timestamps]
    for (ts, name), value in cells.items():
        rows[row_of[ts]][column[name]] = value
    return TabletRows(device_path, series, [type_of(name) for name in series], timestamps, rows)


def time_filter(start: int | None, end: int | None) -> str:
    conditions = []
    if start is not None:
        conditions.append(f"time >= {int(start)}")
    if end is not None:
        conditions.append(f"time < {int(end)}")
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def history_statement(
    device_path: str, series: Sequence[str] | None, start: int | None, end: int | None, limit: int, descending: bool
) -> str:
    """Rows of the device's series; ``limit`` rows hold at least ``limit`` points (each row has one or more)."""
    columns = ", ".join(series) if series else "*"
    order = "DESC" if descending else "ASC"
    return f"SELECT {columns} FROM {device_path}{time_filter(start, end)} ORDER BY TIME {order} LIMIT {int(limit)}"


def latest_statement(device_path: str, series: Sequence[str] | None) -> str:
    return f"SELECT LAST {', '.join(series) if series else '*'} FROM {device_path}"


def group_by(start: int, end: int, window_ms: int) -> str:
    """Windows aligned to the epoch (IoTDB aligns them to the first bound, so that bound is aligned first)."""
    lo = floor_to(start, window_ms)
    hi = -(-end // window_ms) * window_ms
    return f" GROUP BY ([{lo}, {hi}), {int(window_ms)}ms)"


def aggregate_statement(
    device_path: str, selections: Sequence[tuple[str, str]], start: int, end: int, window_ms: int
) -> str:
    """``function(column)`` per window; the WHERE clause keeps the edge windows to [start, end)."""
    selected = ", ".join(f"{function}({column})" for function, column in selections)
    return f"SELECT {selected} FROM {device_path}{time_filter(start, end)}{group_by(start, end, window_ms)}"


def raw_selections(series: Iterable[str]) -> list[tuple[str, str]]:
    """Count, minimum, maximum and sum of numeric raw series."""
    return [(function, name) for name in series for function in RAW_FUNCTIONS.values()]


def rollup_selections(fields: Iterable[str]) -> list[tuple[str, str]]:
    """Stored rollups merged into wider windows: counts and sums add up, extremes stay extremes."""
    return [(STAT_FUNCTIONS[stat], stat_name(field, stat)) for field in fields for stat in STATS]


def count_statement(path_pattern: str, series: Sequence[str] | None, start: int | None, end: int | None) -> str:
    columns = ", ".join(f"count({name})" for name in series) if series else "count(*)"
    return f"SELECT {columns} FROM {path_pattern}{time_filter(start, end)}"


AGGREGATE_COLUMN = re.compile(r"^(\w+)\((.+)\)$")


def parse_aggregate_column(column: str) -> tuple[str, str]:
    """``("count", "f_temperature")`` from ``count(root.iotflow.devices.d_1.f_temperature)``."""
    match = AGGREGATE_COLUMN.match(column)
    if not match:
        raise ValueError(f"not an aggregate column: {column!r}")
    return match.group(1).lower(), last_node(match.group(2))


def plain(value: Any) -> Any:
    """A result cell as a plain Python value (the client hands out numpy scalars, pandas NA, bytes)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8")
    if value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def typed(code: str, value: Any) -> Value:
    """A stored value in the type its series holds (LAST answers every value as text)."""
    if code == "f":
        return float(value)
    if code == "i":
        return int(value)
    if code == "b":
        return value if isinstance(value, bool) else str(value).strip().lower() == "true"
    return str(value)


Row = tuple[int, list[Any]]  # timestamp, one value per column


def points_from_rows(
    device_id: int, columns: Sequence[str], rows: Iterable[Row], limit: int, descending: bool
) -> list[Point]:
    """History rows to the contract's points: ordered by time, then measurement, at most ``limit``."""
    parsed = [parse_series(last_node(column)) for column in columns]
    points = [
        Point(device_id, measurement, ts, typed(code, value))
        for ts, values in rows
        for (measurement, code), value in zip(parsed, values, strict=True)
        if value is not None
    ]
    order = {code: i for i, code in enumerate(TYPE_CODES)}
    points.sort(key=lambda p: (-p.ts if descending else p.ts, p.measurement, order[type_code(p.value)]))
    return points[:limit]


def latest_from_rows(device_id: int, rows: Iterable[Row]) -> dict[str, Point]:
    """LAST rows (``timeseries, value, dataType``) to the newest point of each measurement."""
    newest: dict[str, Point] = {}
    for ts, (path, value, _data_type) in rows:
        measurement, code = parse_series(last_node(path))
        point = Point(device_id, measurement, ts, typed(code, value))
        if measurement not in newest or newest[measurement].ts < ts:
            newest[measurement] = point
    return newest


def raw_parts(columns: Sequence[str], rows: Iterable[Row]) -> list[Part]:
    """GROUP BY rows over raw series to partials per (measurement, window); type series merge later."""
    stat_of = {function: stat for stat, function in RAW_FUNCTIONS.items()}
    keys = []
    for column in columns:
        function, name = parse_aggregate_column(column)
        keys.append(((parse_series(name)[0], name), stat_of[function]))
    return _parts(keys, rows)


def rollup_parts(columns: Sequence[str], rows: Iterable[Row]) -> list[Part]:
    """GROUP BY rows over rollup series (``rollup_selections``) to partials per (measurement, window)."""
    keys = []
    for column in columns:
        measurement, stat = parse_stat(parse_aggregate_column(column)[1])
        keys.append(((measurement, ""), stat))
    return _parts(keys, rows)


def _parts(keys: Sequence[tuple[tuple[str, str], str]], rows: Iterable[Row]) -> list[Part]:
    parts: list[Part] = []
    for ts, values in rows:
        cells: dict[tuple[str, str], dict[str, Any]] = {}
        for (group, stat), value in zip(keys, values, strict=True):
            cells.setdefault(group, {})[stat] = value
        for (measurement, _), stats in sorted(cells.items()):
            count = int(stats.get("n") or 0)
            if count:
                partial = Partial(count, float(stats["lo"]), float(stats["hi"]), float(stats["sum"]))
                parts.append((measurement, ts, partial))
    return parts


def bool_parts(columns: Sequence[str], rows: Iterable[Row], window_ms: int) -> list[Part]:
    """Booleans aggregate as 0 and 1, as in the SQL backend; IoTDB cannot, so IoTFlow does it from raw rows."""
    measurements = [parse_series(last_node(column))[0] for column in columns]
    values: dict[tuple[str, int], list[float]] = {}
    for ts, cells in rows:
        for measurement, value in zip(measurements, cells, strict=True):
            if value is not None:
                values.setdefault((measurement, floor_to(ts, window_ms)), []).append(float(bool(value)))
    return [(m, ts, Partial.of(vs)) for (m, ts), vs in sorted(values.items())]


def sum_counts(rows: Iterable[Row]) -> int:
    return sum(int(value) for _, values in rows for value in values if value is not None)


def ttl_rules(rows: Iterable[Row]) -> dict[str, int | None]:
    """``SHOW ALL TTL`` rows to {path pattern: milliseconds, or None for INF}."""
    rules: dict[str, int | None] = {}
    for _, values in rows:
        path, ttl = values[0], values[1]
        text = str(ttl).strip().upper()
        rules[str(path)] = None if text in ("INF", "NONE", "") else int(float(text))
    return rules


def names_missing(error: str) -> bool:
    """IoTDB's answer to a statement naming series or devices that do not exist (status 508)."""
    return error.startswith("508") or "not exist" in error.lower()


def database_exists(error: str) -> bool:
    """IoTDB's answer to creating a database that exists (status 903)."""
    return error.startswith("903") or "already" in error.lower()


def past_ttl(error: str) -> bool:
    """IoTDB's refusal of points older than the TTL of their path."""
    return "ttl" in error.lower()


def stored_rollup_parts(columns: Sequence[str], rows: Iterable[Row]) -> list[Part]:
    """Rows of stored rollup series (``SELECT *`` of a rollup device) to partials per (measurement, bucket)."""
    keys = []
    for column in columns:
        measurement, stat = parse_stat(last_node(column))
        keys.append(((measurement, ""), stat))
    return _parts(keys, rows)
