"""Telemetry in Apache IoTDB, through the official client's session pool.

Names, types and statements are in ``iotdb_schema`` (pure, unit-tested); rollups and retention
in ``iotdb_tiers``. Here: sessions, and the contract's calls on top of them.

Differences from the SQL backend, all documented in docs/operations.md:
- a point written again with the same device, measurement, type and time replaces the stored
  value (IoTDB keeps the last write; SQL the first); a redelivered message stores it once either way;
- a write that fails half-way may have stored part of its points; the retry (the HTTP client's,
  or the broker's redelivery) stores them all, each once;
- points older than the raw retention are not stored (IoTDB refuses them), and their latest
  values disappear with them.
"""

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from django.conf import settings
from django.db import DatabaseError
from iotdb.Session import Session
from iotdb.SessionPool import PoolConfig, SessionPool
from iotdb.utils.exception import IoTDBConnectionException, StatementExecutionException
from thrift.Thrift import TException

from telemetry import retention
from telemetry.points import Bucket, Point
from telemetry.rollups import HOUR_MS, MINUTE_MS, Band, Part, finish, finish_band, floor_to
from telemetry.timeparse import now_ms

from . import iotdb_schema as schema
from . import iotdb_tiers as tiers
from .base import BackendUnavailable, TelemetryBackend

log = logging.getLogger(__name__)

CONNECTION_ERRORS = (IoTDBConnectionException, TException, TimeoutError, ConnectionError, OSError)
HEALTH_TIMEOUT_MS = 3_000
# Points this close to their expiry are not written: IoTDB would refuse them if its clock ran ahead of ours.
EXPIRY_SAFETY_MS = HOUR_MS


def node_urls() -> list[str]:
    return settings.IOTDB_NODE_URLS or [f"{settings.IOTDB_HOST or '127.0.0.1'}:{settings.IOTDB_PORT}"]


def _rows(session: Session, statement: str) -> tuple[list[str], list[schema.Row]]:
    """Run a query: its value column names, and each row as (time, plain values)."""
    with session.execute_query_statement(statement) as dataset:
        names = list(dataset.get_column_names())
        timed = bool(names) and names[0] == "Time"
        rows = []
        while dataset.has_next():
            record = dataset.next()
            values = [schema.plain(field.value) for field in record.get_fields()]
            rows.append((int(record.get_timestamp()) if timed else 0, values))
    return (names[1:] if timed else names), rows


class IoTDBBackend(TelemetryBackend):
    name = "iotdb"

    def __init__(self) -> None:
        self.paths = schema.Paths(settings.IOTDB_DATABASE)
        self._lock = threading.Lock()
        self._pool: SessionPool | None = None
        self._pool_pid = 0
        self._database_ready = False

    def _session_pool(self) -> SessionPool:
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():  # a forked child opens its own sessions
                config = PoolConfig(
                    node_urls=node_urls(),
                    user_name=settings.IOTDB_USER,
                    password=settings.IOTDB_PASSWORD,
                    fetch_size=settings.IOTDB_FETCH_SIZE,
                    time_zone="UTC",
                    connection_timeout_in_ms=settings.IOTDB_TIMEOUT_MS,
                )
                self._pool = SessionPool(config, settings.IOTDB_POOL_SIZE, settings.IOTDB_POOL_WAIT_MS)
                self._pool_pid = os.getpid()
            return self._pool

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A pooled session; connection failures and refused statements become BackendUnavailable."""
        pool = self._session_pool()
        try:
            session = pool.get_session()
        except CONNECTION_ERRORS as exc:
            raise BackendUnavailable(f"IoTDB at {', '.join(node_urls())} is unreachable: {exc}") from exc
        broken = False
        try:
            yield session
        except CONNECTION_ERRORS as exc:
            broken = True
            raise BackendUnavailable(f"IoTDB at {', '.join(node_urls())} is unreachable: {exc}") from exc
        except StatementExecutionException as exc:
            raise BackendUnavailable(f"IoTDB refused the request: {exc}") from exc
        finally:
            if broken:
                with suppress(Exception):  # the connection is gone; closing is a courtesy
                    session.close()
            pool.put_back(session)  # a closed session only frees its place in the pool

    def query(self, statement: str) -> tuple[list[str], list[schema.Row]]:
        with self.session() as session:
            return _rows(session, statement)

    def _ensure_database(self, session: Session) -> None:
        if self._database_ready:
            return
        try:
            session.execute_non_query_statement(f"CREATE DATABASE {self.paths.database}")
        except StatementExecutionException as exc:
            if not schema.database_exists(str(exc)):
                raise
        self._database_ready = True

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        kept, late = self._admissible(points)
        if kept:
            tablets = [rows.tablet() for rows in schema.point_tablets(kept, self.paths)]
            with self.session() as session:
                self._ensure_database(session)
                try:
                    session.insert_tablets(tablets)
                except StatementExecutionException as exc:
                    if not schema.past_ttl(str(exc)):
                        raise
                    log.warning("IoTDB dropped points past their retention: %s", exc)
        if late:
            self._mark_late(late)

    def _admissible(self, points: Sequence[Point]) -> tuple[list[Point], set[tuple[int, str, int]]]:
        """Points IoTDB will take (within raw retention), and the minutes whose rollups are already done."""
        now = now_ms()
        bounds: dict[int, tuple[int, int]] = {}
        kept, late = [], set()
        for point in points:
            if point.device_id not in bounds:
                policy = retention.policy_for(point.device_id)
                bounds[point.device_id] = _write_bounds(policy, now)
            expiry, rolled_up = bounds[point.device_id]
            if point.ts < expiry:
                continue
            kept.append(point)
            if point.ts < rolled_up and not isinstance(point.value, str):
                late.add((point.device_id, point.measurement, floor_to(point.ts, MINUTE_MS)))
        return kept, late

    def _mark_late(self, minutes: set[tuple[int, str, int]]) -> None:
        from telemetry.models import RollupMarker

        try:
            RollupMarker.objects.bulk_create(
                [RollupMarker(device_id=d, measurement=m, bucket=b) for d, m, b in minutes]
            )
        except DatabaseError as exc:
            # The points are stored; a retry stores them again (once) and records the markers.
            raise BackendUnavailable(f"Could not record late points for their rollups: {exc}") from exc

    def history(self, device_id, *, start, end, fields=None, limit=1000, descending=True) -> list[Point]:
        series = schema.series_of(fields) if fields else None
        statement = schema.history_statement(self.paths.device(device_id), series, start, end, limit, descending)
        columns, rows = self.query(statement)
        return schema.points_from_rows(device_id, columns, rows, limit, descending)

    def latest(self, device_id, fields=None) -> dict[str, Point]:
        series = schema.series_of(fields) if fields else None
        _, rows = self.query(schema.latest_statement(self.paths.device(device_id), series))
        return schema.latest_from_rows(device_id, rows)

    def aggregate(self, device_id, fields, *, start, end, window_ms, function) -> dict[str, list[Bucket]]:
        """Raw points where IoTDB still has them, rollups before (``iotdb_tiers`` keeps them)."""
        return finish(fields, self.aggregate_parts(device_id, fields, start, end, window_ms), window_ms, function)

    def aggregate_band(self, device_id, fields, *, start, end, window_ms, function) -> dict[str, list[Band]]:
        """As ``aggregate``, reading each tier once: its partials carry the minimum and maximum too."""
        return finish_band(fields, self.aggregate_parts(device_id, fields, start, end, window_ms), window_ms, function)

    def aggregate_parts(
        self, device_id: int, fields: Sequence[str], start: int, end: int, window_ms: int
    ) -> list[Part]:
        """Partials of [start, end) per measurement and window, one query per stretch of ``tiers.read_plan``."""
        now = now_ms()
        policy = retention.policy_for(device_id)
        through = tiers.rolled_up_through(device_id, policy, now)
        expiry = _write_bounds(policy, now)[0]
        parts: list[Part] = []
        for segment in tiers.read_plan(start, end, window_ms, through, expiry):
            if segment.tier == "raw":
                parts.extend(self.raw_parts(device_id, fields, segment.start, segment.end, window_ms))
            else:
                parts.extend(self.rollup_parts(device_id, fields, segment.tier, segment.start, segment.end, window_ms))
        return parts

    def raw_parts(
        self, device_id: int, fields: Sequence[str] | None, start: int, end: int, window_ms: int
    ) -> list[Part]:
        """Count, min, max and sum per measurement and window; ``fields`` None means every measurement."""
        device = self.paths.device(device_id)
        existing = self.series(device)
        wanted = [name for name in existing if fields is None or schema.parse_series(name)[0] in fields]
        numeric = [name for name in wanted if name[0] in schema.NUMERIC_CODES]
        booleans = [name for name in wanted if name[0] == "b"]
        parts: list[Part] = []
        if numeric:
            selections = schema.raw_selections(numeric)
            parts.extend(
                schema.raw_parts(*self.query(schema.aggregate_statement(device, selections, start, end, window_ms)))
            )
        if booleans:
            columns, rows = self.query(f"SELECT {', '.join(booleans)} FROM {device}{schema.time_filter(start, end)}")
            parts.extend(schema.bool_parts(columns, rows, window_ms))
        return parts

    def rollup_parts(self, device_id: int, fields, tier: str, start: int, end: int, window_ms: int) -> list[Part]:
        selections = schema.rollup_selections(fields)
        statement = schema.aggregate_statement(self.paths.rollup(tier, device_id), selections, start, end, window_ms)
        return schema.rollup_parts(*self.query(statement))

    def series(self, device_path: str) -> list[str]:
        """Names of the series stored under a device path."""
        _, rows = self.query(f"SHOW TIMESERIES {device_path}.*")
        return sorted(schema.last_node(str(values[0])) for _, values in rows)

    def delete(self, device_id, *, start=None, end=None, fields=None) -> int:
        device = self.paths.device(device_id)
        targets = [name for name in self.series(device) if not fields or schema.parse_series(name)[0] in fields]
        if not targets:
            return 0
        _, rows = self.query(schema.count_statement(device, targets, start, end))
        deleted = schema.sum_counts(rows)
        lo = schema.LONG_MIN if start is None else start
        hi = schema.LONG_MAX if end is None else end - 1
        ranges = [([f"{device}.{name}" for name in targets], lo, hi)]
        measurements = {schema.parse_series(name)[0] for name in targets}
        for tier, size in (("1m", MINUTE_MS), ("1h", HOUR_MS)):
            # Whole buckets inside the range go; a bucket cut by a bound keeps what it had.
            first = lo if start is None else -(-start // size) * size
            last = hi if end is None else end - size
            path = self.paths.rollup(tier, device_id)
            stats = [f"{path}.{name}" for name in self.series(path) if schema.parse_stat(name)[0] in measurements]
            if stats and first <= last:
                ranges.append((stats, first, last))
        with self.session() as session:
            for paths, first, last in ranges:
                session.delete_data_in_range(paths, first, last)
        return deleted

    def count(self, device_id=None) -> int:
        if device_id is None:
            statement = f"SELECT count(*) FROM {self.paths.devices_pattern()} GROUP BY LEVEL = 1"
        else:
            statement = f"SELECT count(*) FROM {self.paths.device(device_id)}"
        _, rows = self.query(statement)
        return schema.sum_counts(rows)

    def health(self) -> dict:
        """A fresh session per node with a short timeout: a health check must answer quickly either way."""
        base = {"backend": self.name, "nodes": node_urls(), "database": self.paths.database}
        errors = []
        for url in node_urls():
            host, _, port = url.rpartition(":")
            session = Session(
                host,
                int(port),
                settings.IOTDB_USER,
                settings.IOTDB_PASSWORD,
                zone_id="UTC",
                connection_timeout_in_ms=HEALTH_TIMEOUT_MS,
            )
            try:
                session.open(False)
                _, rows = _rows(session, "SHOW VERSION")
            except (*CONNECTION_ERRORS, StatementExecutionException) as exc:
                errors.append(f"{url}: {exc or type(exc).__name__}")
                continue
            finally:
                with suppress(Exception):  # never opened, or already gone
                    session.close()
            version = str(rows[0][1][0]) if rows and rows[0][1] else ""
            return {**base, "status": "healthy", "version": version}
        return {**base, "status": "unhealthy", "error": "; ".join(errors)}

    def delete_device(self, device_id: int) -> None:
        tiers.delete_device(self, device_id)

    def refresh_rollups(self) -> dict:
        return tiers.refresh(self)

    def apply_retention(self) -> dict:
        return tiers.apply_retention(self)

    def export_rollups(self, device_id: int, tier: str, after: int | None, limit: int) -> list[Part]:
        return tiers.export_rollups(self, device_id, tier, after, limit)

    def import_rollups(self, device_id: int, tier: str, parts: list[Part]) -> None:
        tiers.import_rollups(self, device_id, tier, parts)


def _write_bounds(policy: retention.Policy, now: int) -> tuple[int, int]:
    """(points before this are past raw retention, points before this are in finished rollups)."""
    if policy.raw_days is None:
        return schema.LONG_MIN, schema.LONG_MIN
    horizon = now - policy.raw_days * retention.DAY_MS
    return horizon + EXPIRY_SAFETY_MS, tiers.rollup_target(policy, now)
