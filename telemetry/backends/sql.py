"""Telemetry in the Django database (PostgreSQL in production, SQLite embedded)."""

from collections.abc import Sequence

from django.db import DatabaseError, OperationalError, connection, transaction

from telemetry.models import LatestValue, TelemetryPoint, ValueType
from telemetry.points import Bucket, Point, Value

from . import sql_retention, sql_rollups
from .base import BackendUnavailable, TelemetryBackend

COLUMNS = "device_id, measurement, ts, value_type, value_float, value_text"
STAGING_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS telemetry_staging (ord bigserial, device_id bigint, "
    "measurement varchar(128), ts bigint, value_type smallint, value_float double precision, value_text text) "
    "ON COMMIT DELETE ROWS"
)


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


def _newest_per_series(points: Sequence[Point]) -> list[Point]:
    newest: dict[tuple[int, str], Point] = {}
    for point in points:
        key = (point.device_id, point.measurement)
        if key not in newest or newest[key].ts < point.ts:
            newest[key] = point
    # A fixed order keeps concurrent writers taking row locks in the same order (no deadlocks).
    return [newest[key] for key in sorted(newest)]


class SQLBackend(TelemetryBackend):
    name = "sql"

    def __init__(self) -> None:
        self.points_table = TelemetryPoint._meta.db_table
        self.latest_table = LatestValue._meta.db_table

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        rows = _rows(points)
        latest = _rows(_newest_per_series(points))
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    self._write_postgresql(cursor, rows, latest)
                else:
                    self._write_values(cursor, rows, latest)
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

    def _write_postgresql(self, cursor, rows: list[tuple], latest: list[tuple]) -> None:
        """COPY the batch into a per-connection staging table, then merge it in two set statements."""
        raw = cursor.cursor.connection
        with connection.wrap_database_errors, raw.cursor() as staging:
            staging.execute(STAGING_TABLE)
            # Emptied on commit, but a write nested in a larger transaction must not see an earlier one's rows.
            staging.execute("DELETE FROM telemetry_staging")
            with staging.copy(f"COPY telemetry_staging ({COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        # Within a batch, the first of several points with one identity is the one kept (``ord``).
        cursor.execute(self._insert_points(f"SELECT {COLUMNS} FROM telemetry_staging ORDER BY ord"))
        cursor.execute(sql_rollups.MARK_FROM_STAGING)
        cursor.execute(
            self._upsert_latest(
                f"SELECT DISTINCT ON (device_id, measurement) {COLUMNS} FROM telemetry_staging "
                "ORDER BY device_id, measurement, ts DESC, ord"
            )
        )

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
        qs = LatestValue.objects.filter(device_id=device_id)
        if fields:
            qs = qs.filter(measurement__in=list(fields))
        return {
            m: Point(device_id, m, ts, decode(t, f, s))
            for m, ts, t, f, s in qs.values_list("measurement", "ts", "value_type", "value_float", "value_text")
        }

    def aggregate(self, device_id, fields, *, start, end, window_ms, function) -> dict[str, list[Bucket]]:
        """From the coarsest rollup tier that answers exactly, raw points at the edges (``sql_rollups``)."""
        return sql_rollups.aggregate(device_id, fields, start, end, window_ms, function)

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
