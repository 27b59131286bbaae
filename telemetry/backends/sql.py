"""Telemetry in the Django database (PostgreSQL in production, SQLite embedded)."""

from collections.abc import Sequence
from functools import cached_property

import psycopg
from django.db import DatabaseError, OperationalError, connection, transaction

from telemetry.models import LatestValue, TelemetryPoint, ValueType
from telemetry.points import Bucket, Point, Value
from telemetry.rollups import MINUTE_MS

from . import sql_retention, sql_rollups
from .base import BackendUnavailable, TelemetryBackend
from .group_commit import GroupCommit

COLUMNS = "device_id, measurement, ts, value_type, value_float, value_text"
# A batch travels as arrays, one parameter each whatever its size: six for the points, three for the minutes
# to mark for the rollup pass, six for the latest values.
ARRAYS = "%s::bigint[], %s::varchar[], %s::bigint[], %s::smallint[], %s::double precision[], %s::text[]"
# Values stored in value_float (``encode``): the minutes they fall in are marked for the rollup pass.
NUMBERS = (int, float)
# The value_type of a plain number, as array text (bool, a subclass of int, is not one of them).
NUMBER_CODES = {int: str(int(ValueType.INT)), float: str(int(ValueType.FLOAT))}


def encode(value: Value) -> tuple[int, float | None, str | None]:
    if isinstance(value, bool):
        return ValueType.BOOL, float(value), None
    if isinstance(value, int):
        return ValueType.INT, float(value), None
    if isinstance(value, float):
        return ValueType.FLOAT, value, None
    return ValueType.TEXT, None, value


def decode(value_type: int, value_float: float | None, value_text: str | None) -> Value:
    if value_type == ValueType.BOOL:
        return bool(value_float)
    if value_type == ValueType.INT:
        return int(value_float)
    if value_type == ValueType.TEXT:
        return value_text
    return value_float


def _rows(points: Sequence[Point]) -> list[tuple]:
    return [(p.device_id, p.measurement, p.ts, *encode(p.value)) for p in points]


def _columns(points: Sequence[Point]) -> list[str]:
    """The six array literals of ``points``, in the order of COLUMNS.

    A batch of plain numbers (the usual one) is written without encoding each value: its texts are all
    NULL, and for floats only its types are the same for every point.
    """
    values = [p.value for p in points]
    kinds = set(map(type, values))
    if kinds <= NUMBER_CODES.keys():
        if kinds == {float}:
            types = _same(NUMBER_CODES[float], len(values))
        else:
            types = "{" + ",".join([NUMBER_CODES[type(value)] for value in values]) + "}"
        # float8 takes an integer's digits as the float ``encode`` would store.
        floats = "{" + ",".join(map(repr, values)) + "}"
        texts = _same("NULL", len(values))
    else:
        value_types, value_floats, value_texts = zip(*map(encode, values), strict=True)
        types, floats, texts = _numbers(value_types), _numbers(value_floats), _texts(value_texts)
    device_ids = _integers([p.device_id for p in points])
    return [
        device_ids,
        _names([p.measurement for p in points]),
        _integers([p.ts for p in points]),
        types,
        floats,
        texts,
    ]


def _same(element: object, count: int) -> str:
    return "{" + ",".join([str(element)] * count) + "}"


def _integers(values: Sequence[int]) -> str:
    return "{" + ",".join(map(int.__repr__, values)) + "}"


def _names(values: Sequence[str]) -> str:
    """As ``_texts`` for text without NULLs, in one join when nothing needs escaping (measurement names)."""
    joined = '","'.join(values)
    if "\\" in joined or joined.count('"') != 2 * len(values) - 2:
        return _texts(values)
    return '{"' + joined + '"}' if values else "{}"


def _numbers(values: Sequence[int | float | None]) -> str:
    """A PostgreSQL array literal of numbers (NULL for None), built in C by ``str.join``.

    psycopg adapts a list element by element in Python: 3.4 ms of CPU for the six columns of 1,000 points,
    against 1.4 ms for the literals. ``float.__repr__`` round-trips exactly through float8,
    and ``int.__repr__`` gives the number of an IntegerChoices member too.
    """
    return "{" + ",".join([_number(value) for value in values]) + "}"


def _number(value: int | float | None) -> str:
    if value is None:
        return "NULL"
    return float.__repr__(value) if isinstance(value, float) else int.__repr__(value)


def _texts(values: Sequence[str | None]) -> str:
    """A PostgreSQL array literal of text: every element quoted, backslashes and quotes escaped."""
    return "{" + ",".join([_quoted(value) for value in values]) + "}"


def _quoted(value: str | None) -> str:
    if value is None:
        return "NULL"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _newest_per_series(points: Sequence[Point]) -> list[Point]:
    newest: dict[tuple[int, str], Point] = {}
    for point in points:
        key = (point.device_id, point.measurement)
        current = newest.get(key)
        if current is None or current.ts < point.ts:
            newest[key] = point
    # A fixed order keeps concurrent writers taking row locks in the same order (no deadlocks).
    return [newest[key] for key in sorted(newest)]


def batch_parameters(points: Sequence[Point]) -> list[str]:
    """The parameters of ``SQLBackend._batch_statement`` for ``points``: their columns, minutes, latest values."""
    return [*_columns(points), *_minute_columns(points), *_columns(_newest_per_series(points))]


def _minute_columns(points: Sequence[Point]) -> list[str]:
    """The minutes of numeric points (``sql_rollups.marker_keys``) as three array literals."""
    keys = {(p.device_id, p.measurement, p.ts // MINUTE_MS * MINUTE_MS) for p in points if isinstance(p.value, NUMBERS)}
    if not keys:
        return ["{}", "{}", "{}"]
    device_ids, measurements, buckets = zip(*keys, strict=True)
    return [_integers(device_ids), _names(measurements), _integers(buckets)]


class SQLBackend(TelemetryBackend):
    name = "sql"

    def __init__(self) -> None:
        self.points_table = TelemetryPoint._meta.db_table
        self.latest_table = LatestValue._meta.db_table
        # Writes outside a transaction commit with their statement: concurrent ones share it (group_commit.py).
        self._group = GroupCommit(self._write_postgresql)

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        try:
            if connection.vendor == "postgresql" and not connection.in_atomic_block:
                self._group.write(points)
            elif connection.vendor == "postgresql":
                with transaction.atomic():  # a savepoint: a failed write leaves the caller's transaction usable
                    self._write_postgresql(points)
            else:
                with transaction.atomic(), connection.cursor() as cursor:
                    self._write_values(cursor, _rows(points), _rows(_newest_per_series(points)))
        except OperationalError as exc:
            raise BackendUnavailable(str(exc)) from exc

    def _insert_points(self, source: str) -> str:
        return (
            f"INSERT INTO {self.points_table} ({COLUMNS}) {source} ON CONFLICT (device_id, measurement, ts) DO NOTHING"
        )

    def _upsert_latest(self, source: str) -> str:
        # The first point stored for a timestamp wins, as in the points table.
        return (
            f"INSERT INTO {self.latest_table} ({COLUMNS}) {source} "
            "ON CONFLICT (device_id, measurement) DO UPDATE SET ts = excluded.ts, "
            "value_type = excluded.value_type, value_float = excluded.value_float, "
            f"value_text = excluded.value_text WHERE {self.latest_table}.ts < excluded.ts"
        )

    @cached_property
    def _batch_parts(self) -> tuple[str, str, str]:
        """The points insert, the rollup markers insert and the latest values upsert of ``_batch_statement``.

        ``ord`` keeps the order of the call, so of several points with one identity the first is kept.
        """
        points = self._insert_points(
            f"SELECT {COLUMNS} FROM unnest({ARRAYS}) WITH ORDINALITY AS b ({COLUMNS}, ord) ORDER BY ord"
        )
        markers = (
            f"INSERT INTO {sql_rollups.MARKERS} (device_id, measurement, bucket) "
            "SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::bigint[])"
        )
        return points, markers, self._upsert_latest(f"SELECT * FROM unnest({ARRAYS})")

    @cached_property
    def _batch_statement(self) -> str:
        """Points, rollup markers and latest values of a batch in one statement: one round trip, atomic alone.

        The latest values and the minutes to mark are picked in Python: one pass over the points costs
        less than PostgreSQL sorting and grouping the whole batch again (docs/performance.md).
        """
        points, markers, latest = self._batch_parts
        return f"WITH stored AS ({points}), marked AS ({markers}) {latest}"

    def _write_postgresql(self, points: Sequence[Point]) -> None:
        """One statement with the batch as arrays: atomic by itself, so outside a transaction it needs no BEGIN/COMMIT.

        Measured against COPY into a staging table and three set statements, it is ~8x faster for one
        reading and still faster for 1,000 points (docs/performance.md). Server-side binding sends the
        arrays as parameters and lets PostgreSQL keep the plan.
        """
        params = batch_parameters(points)
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(self._batch_statement, params, prepare=True)

    def _write_values(self, cursor, rows: list[tuple], latest: list[tuple]) -> None:
        # SQLite allows 32,766 bound parameters per statement; six per row.
        size = 500
        for table_rows, statement in ((rows, self._insert_points), (latest, self._upsert_latest)):
            for i in range(0, len(table_rows), size):
                chunk = table_rows[i : i + size]
                placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
                cursor.execute(statement(f"VALUES {placeholders}"), [v for row in chunk for v in row])
        sql_rollups.mark(sql_rollups.marker_keys(rows))

    def _points(self, device_id: int, start: int | None, end: int | None, fields: Sequence[str] | None):
        qs = TelemetryPoint.objects.filter(device_id=device_id)
        if start is not None:
            qs = qs.filter(ts__gte=start)
        if end is not None:
            qs = qs.filter(ts__lt=end)
        if fields:
            qs = qs.filter(measurement__in=list(fields))
        return qs

    def history(self, device_id, *, start, end, fields=None, limit=1000, descending=True) -> list[Point]:
        order = ("-ts", "measurement") if descending else ("ts", "measurement")
        rows = self._points(device_id, start, end, fields).order_by(*order)[:limit]
        return [
            Point(device_id, m, ts, decode(t, f, s))
            for m, ts, t, f, s in rows.values_list("measurement", "ts", "value_type", "value_float", "value_text")
        ]

    def latest(self, device_id, fields=None) -> dict[str, Point]:
        """One indexed read; plain SQL, since compiling the ORM query cost more CPU than running it."""
        sql = f"SELECT {COLUMNS} FROM {self.latest_table} WHERE device_id = %s"
        params: list = [device_id]
        if fields:
            sql += f" AND measurement IN ({', '.join(['%s'] * len(fields))})"
            params.extend(fields)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return {m: Point(device_id, m, ts, decode(t, f, s)) for _, m, ts, t, f, s in rows}

    def aggregate(self, device_id, fields, *, start, end, window_ms, function) -> dict[str, list[Bucket]]:
        """From the coarsest rollup tier that answers exactly, raw points at the edges (``sql_rollups``)."""
        return sql_rollups.aggregate(device_id, fields, start, end, window_ms, function)

    def aggregate_band(self, device_id, fields, *, start, end, window_ms, function) -> dict[str, list]:
        """One read of the tiers for the value and its min/max band (``sql_rollups``)."""
        return sql_rollups.aggregate_band(device_id, fields, start, end, window_ms, function)

    def delete(self, device_id, *, start=None, end=None, fields=None) -> int:
        with transaction.atomic():
            deleted, _ = self._points(device_id, start, end, fields).delete()
            self._rebuild_latest(device_id, fields)
            sql_rollups.after_delete(device_id, start, end, fields)
        return deleted

    def _rebuild_latest(self, device_id: int, fields: Sequence[str] | None) -> None:
        """After a delete, point each touched measurement's latest value at what is left."""
        stale = LatestValue.objects.filter(device_id=device_id)
        if fields:
            stale = stale.filter(measurement__in=list(fields))
        measurements = list(stale.values_list("measurement", flat=True))
        stale.delete()
        survivors = []
        for measurement in measurements:
            newest = self.history(device_id, start=None, end=None, fields=[measurement], limit=1)
            survivors.extend(newest)
        if survivors:
            self.write(survivors)

    def count(self, device_id=None) -> int:
        qs = TelemetryPoint.objects.all()
        if device_id is not None:
            qs = qs.filter(device_id=device_id)
        return qs.count()

    def health(self) -> dict:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError as exc:
            return {"status": "unhealthy", "backend": self.name, "error": str(exc)}
        return {"status": "healthy", "backend": self.name, "database": connection.vendor}

    def delete_device(self, device_id: int) -> None:
        sql_rollups.delete_device(device_id)

    def refresh_rollups(self) -> dict:
        return sql_rollups.refresh()

    def apply_retention(self) -> dict:
        return sql_retention.apply()

    def export_rollups(self, device_id: int, tier: str, after: int | None, limit: int) -> list:
        return sql_rollups.export_rollups(device_id, tier, after, limit)

    def import_rollups(self, device_id: int, tier: str, parts: Sequence) -> None:
        sql_rollups.import_rollups(device_id, tier, parts)
