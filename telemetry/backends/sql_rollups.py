"""Rollups of the SQL backend: kept exact by markers, read through the coarsest tier that answers.

Every write also records, in the same transaction, a marker per (device, measurement, minute)
it touched. The rollup pass folds marked minutes into the 1-minute rollups and their hours
into the 1-hour rollups, then drops the markers it handled, all in one transaction: a point
and its marker become visible together, so no point, however late, escapes its rollups.

A rollup whose source retention has deleted (``source_pruned``) cannot be recomputed; points
arriving for it later are added to it instead, and deleted at once, being past retention too.

Reads trust a rollup bucket only when no marker is pending for it; a marked minute is read
from raw points (plus its pruned rollup, if any), a marked hour from its minutes.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, ExpressionWrapper, F, Max, Min, Sum

from devices.models import Device
from telemetry.models import LatestValue, RollupHour, RollupMarker, RollupMinute, RollupWatermark, TelemetryPoint
from telemetry.rollups import HOUR_MS, MINUTE_MS, Band, Part, Partial, Segment, finish, finish_band, floor_to, split

Key = tuple[int, str, int]  # device id, measurement, bucket start

POINTS = TelemetryPoint._meta.db_table
MARKERS = RollupMarker._meta.db_table
MINUTES = RollupMinute._meta.db_table
HOURS = RollupHour._meta.db_table
STATS = "count, minimum, maximum, total"
CHUNK = 1000
# Any constant identifies the rollup pass's lock; two passes must not rebuild the same hour at once.
ADVISORY_LOCK = 0x10F1_0001


def marker_keys(rows: Iterable[tuple]) -> list[Key]:
    """The minutes of numeric points among encoded rows ``(device_id, measurement, ts, type, float, text)``."""
    return sorted({(row[0], row[1], floor_to(row[2], MINUTE_MS)) for row in rows if row[4] is not None})


def mark(keys: Sequence[Key]) -> None:
    """Record minutes whose rollups must be recomputed (inside the caller's transaction)."""
    with connection.cursor() as cursor:
        for chunk in _chunks(keys):
            placeholders = ", ".join(["(%s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {MARKERS} (device_id, measurement, bucket) VALUES {placeholders}",
                [value for key in chunk for value in key],
            )


def _chunks(items: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _keys_cte(keys: Sequence[Key]) -> tuple[str, list]:
    placeholders = ", ".join(["(%s, %s, %s)"] * len(keys))
    return f"WITH k (device_id, measurement, bucket) AS (VALUES {placeholders}) ", [v for key in keys for v in key]


def refresh(batch_size: int = 5000) -> dict:
    """Fold every pending marker into the rollups; returns how many markers were handled."""
    handled = 0
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK])
            claimed = list(
                RollupMarker.objects.order_by("pk").values_list("pk", "device_id", "measurement", "bucket")[:batch_size]
            )
            if claimed:
                _fold(sorted({(d, m, b) for _, d, m, b in claimed}))
                # By id, not by range: a marker committed meanwhile with a smaller id is handled next time.
                RollupMarker.objects.filter(pk__in=[row[0] for row in claimed]).delete()
        handled += len(claimed)
        if len(claimed) < batch_size:
            return {"markers": handled}


def _fold(keys: list[Key]) -> None:
    existing = set(Device.objects.filter(pk__in={k[0] for k in keys}).values_list("pk", flat=True))
    keys = [key for key in keys if key[0] in existing]
    hours = sorted({(d, m, floor_to(b, HOUR_MS)) for d, m, b in keys})
    pruned_hours = _pruned(HOURS, hours)
    pruned_minutes = _pruned(MINUTES, keys)
    recompute, rebuild_hours = [], set()
    for device_id, measurement, bucket in keys:
        hour = (device_id, measurement, floor_to(bucket, HOUR_MS))
        if hour in pruned_hours:
            _add_late_points(RollupHour, hour, bucket)
            continue
        if (device_id, measurement, bucket) in pruned_minutes:
            _add_late_points(RollupMinute, (device_id, measurement, bucket), bucket)
        else:
            recompute.append((device_id, measurement, bucket))
        rebuild_hours.add(hour)
    with connection.cursor() as cursor:
        for chunk in _chunks(recompute):
            _replace(cursor, MINUTES, chunk, MINUTE_FROM_POINTS)
        for chunk in _chunks(sorted(rebuild_hours)):
            _replace(cursor, HOURS, chunk, HOUR_FROM_MINUTES)


def _pruned(table: str, keys: Sequence[Key]) -> set[Key]:
    found: set[Key] = set()
    with connection.cursor() as cursor:
        for chunk in _chunks(keys):
            cte, params = _keys_cte(chunk)
            cursor.execute(
                f"{cte}SELECT r.device_id, r.measurement, r.bucket FROM {table} r JOIN k ON r.device_id = k.device_id "
                "AND r.measurement = k.measurement AND r.bucket = k.bucket WHERE r.source_pruned",
                params,
            )
            found.update(cursor.fetchall())
    return found


def _per_key(table: str, column: str, size: int, stats: str, lateral: bool, only: str = "TRUE") -> str:
    """``stats`` of each key's rows of ``table`` in [bucket, bucket + size) for ``_replace``; no row where none.

    LATERAL reads each key's rows by an index range whatever the statistics say: as a join, PostgreSQL merged or
    hashed a table not yet analyzed (fresh, backfilled) on (device, measurement), testing every row against every key.
    SQLite has no LATERAL; its nested loop reads an index range per key anyway.
    """
    key = "k.device_id, k.measurement, k.bucket"
    rows = (
        f"s.device_id = k.device_id AND s.measurement = k.measurement "
        f"AND s.{column} >= k.bucket AND s.{column} < k.bucket + {size} AND {only}"
    )
    if lateral:
        return (
            f"SELECT {key}, a.count, a.minimum, a.maximum, a.total, FALSE FROM k CROSS JOIN LATERAL "
            f"(SELECT COUNT(*) AS found, {stats} FROM {table} s WHERE {rows}) a WHERE a.found > 0"
        )
    return f"SELECT {key}, {stats}, FALSE FROM k JOIN {table} s ON {rows} GROUP BY {key}"


POINT_STATS = (
    "COUNT(s.value_float) AS count, MIN(s.value_float) AS minimum, "
    "MAX(s.value_float) AS maximum, SUM(s.value_float) AS total"
)
MINUTE_STATS = "SUM(s.count) AS count, MIN(s.minimum) AS minimum, MAX(s.maximum) AS maximum, SUM(s.total) AS total"
NUMERIC = "s.value_float IS NOT NULL"
MINUTE_FROM_POINTS = _per_key(POINTS, "ts", MINUTE_MS, POINT_STATS, lateral=True, only=NUMERIC)
HOUR_FROM_MINUTES = _per_key(MINUTES, "bucket", HOUR_MS, MINUTE_STATS, lateral=True)
JOINED = {  # the same for SQLite
    MINUTE_FROM_POINTS: _per_key(POINTS, "ts", MINUTE_MS, POINT_STATS, lateral=False, only=NUMERIC),
    HOUR_FROM_MINUTES: _per_key(MINUTES, "bucket", HOUR_MS, MINUTE_STATS, lateral=False),
}


def _replace(cursor, table: str, keys: Sequence[Key], select: str) -> None:
    """Replace the rollups of ``keys`` in ``table`` by ``select``'s fresh aggregation (none when it finds nothing)."""
    cte, params = _keys_cte(keys)
    if connection.vendor != "postgresql":
        select = JOINED[select]
    cursor.execute(
        f"{cte}DELETE FROM {table} WHERE (device_id, measurement, bucket) IN "
        "(SELECT device_id, measurement, bucket FROM k)",
        params,
    )
    cursor.execute(
        f"{cte}INSERT INTO {table} (device_id, measurement, bucket, {STATS}, source_pruned) {select}", params
    )


def _add_late_points(model, key: Key, minute: int) -> None:
    """Add a minute's raw points (all late: retention removed the rest) to a pruned rollup, then drop them."""
    device_id, measurement, bucket = key
    raw = TelemetryPoint.objects.filter(
        device_id=device_id, measurement=measurement, ts__gte=minute, ts__lt=minute + MINUTE_MS
    )
    late = _partial(raw.filter(value_float__isnull=False).aggregate(**_STAT_AGGREGATES))
    if late is not None:
        row = model.objects.select_for_update().get(device_id=device_id, measurement=measurement, bucket=bucket)
        merged = _row_partial(row).merge(late)
        row.count, row.minimum, row.maximum, row.total = merged.count, merged.minimum, merged.maximum, merged.total
        row.save(update_fields=["count", "minimum", "maximum", "total"])
    raw.delete()


_STAT_AGGREGATES = {
    "n": Count("value_float"),
    "lo": Min("value_float"),
    "hi": Max("value_float"),
    "s": Sum("value_float"),
}


def _partial(row: dict) -> Partial | None:
    if not row["n"]:
        return None
    return Partial(row["n"], row["lo"], row["hi"], row["s"])


def _row_partial(row: RollupMinute | RollupHour) -> Partial:
    return Partial(row.count, row.minimum, row.maximum, row.total)


def aggregate(device_id: int, fields: Sequence[str], start: int, end: int, window_ms: int, function: str) -> dict:
    """The contract's aggregate, answered tier by tier (see ``telemetry.rollups.split``)."""
    return finish(fields, read_parts(device_id, fields, start, end, window_ms), window_ms, function)


def aggregate_band(
    device_id: int, fields: Sequence[str], start: int, end: int, window_ms: int, function: str
) -> dict[str, list[Band]]:
    """The contract's aggregate_band: the parts are read once, and each carries its minimum and maximum."""
    return finish_band(fields, read_parts(device_id, fields, start, end, window_ms), window_ms, function)


def read_parts(device_id: int, fields: Sequence[str], start: int, end: int, window_ms: int) -> list[Part]:
    """Partials covering [start, end) exactly once, from the coarsest tier that fits each stretch."""
    found: list[Part] = []
    for segment in split(start, end, window_ms):
        if segment.tier == "raw":
            found.extend(_raw_parts(device_id, fields, segment.start, segment.end, window_ms))
        else:
            found.extend(_tier_parts(device_id, fields, segment))
    return found


def _raw_parts(device_id: int, fields: Sequence[str], start: int, end: int, size: int) -> list[Part]:
    bucket = ExpressionWrapper(F("ts") / size * size, output_field=BigIntegerField())
    rows = (
        TelemetryPoint.objects.filter(
            device_id=device_id, measurement__in=list(fields), ts__gte=start, ts__lt=end, value_float__isnull=False
        )
        .annotate(bucket=bucket)
        .values("measurement", "bucket")
        .annotate(**_STAT_AGGREGATES)
    )
    return [(row["measurement"], row["bucket"], _partial(row)) for row in rows if row["n"]]


def _stale(device_id: int, fields: Sequence[str], start: int, end: int) -> set[tuple[str, int]]:
    """Minutes with a pending marker: their rollups (and their hours') may miss points."""
    markers = RollupMarker.objects.filter(
        device_id=device_id, measurement__in=list(fields), bucket__gte=start, bucket__lt=end
    )
    return set(markers.values_list("measurement", "bucket").distinct())


def _rollups(model, device_id: int, fields: Sequence[str], start: int, end: int) -> dict:
    rows = model.objects.filter(device_id=device_id, measurement__in=list(fields), bucket__gte=start, bucket__lt=end)
    return {
        (m, b): (Partial(n, lo, hi, s), pruned)
        for m, b, n, lo, hi, s, pruned in rows.values_list(
            "measurement", "bucket", "count", "minimum", "maximum", "total", "source_pruned"
        )
    }


def _tier_parts(device_id: int, fields: Sequence[str], segment: Segment) -> list[Part]:
    stale = _stale(device_id, fields, segment.start, segment.end)
    if segment.tier == "1m":
        return _minute_parts(device_id, fields, segment.start, segment.end, stale)
    rows = _rollups(RollupHour, device_id, fields, segment.start, segment.end)
    stale_hours: dict[tuple[str, int], set[tuple[str, int]]] = defaultdict(set)
    for m, b in stale:
        stale_hours[(m, floor_to(b, HOUR_MS))].add((m, b))
    parts = [(m, b, partial) for (m, b), (partial, _) in rows.items() if (m, b) not in stale_hours]
    for (measurement, hour), minutes in sorted(stale_hours.items()):
        row = rows.get((measurement, hour))
        if row is not None and row[1]:
            # Its minutes are gone: the hour holds all but the late points, which are still raw.
            parts.append((measurement, hour, row[0]))
            parts.extend((m, b, late) for (m, b), late in sorted(_raw_minutes(device_id, minutes).items()))
        else:
            parts.extend(_minute_parts(device_id, [measurement], hour, hour + HOUR_MS, minutes))
    return parts


def _minute_parts(device_id: int, fields: Sequence[str], start: int, end: int, stale: set) -> list[Part]:
    rows = _rollups(RollupMinute, device_id, fields, start, end)
    parts = [(m, b, partial) for (m, b), (partial, _) in rows.items() if (m, b) not in stale]
    stale_here = {(m, b) for m, b in stale if m in fields and start <= b < end}
    raw = _raw_minutes(device_id, stale_here)
    for key in sorted(stale_here):
        row = rows.get(key)
        if row is not None and row[1]:
            parts.append((*key, row[0]))  # pruned: the raw points left are the late ones, added below
        late = raw.get(key)
        if late is not None:
            parts.append((*key, late))
    return parts


def _raw_minutes(device_id: int, minutes: set[tuple[str, int]]) -> dict[tuple[str, int], Partial]:
    """Raw partials of the given (measurement, minute) pairs, in one query over their span."""
    found: dict[tuple[str, int], Partial] = {}
    if not minutes:
        return found
    start = min(b for _, b in minutes)
    end = max(b for _, b in minutes) + MINUTE_MS
    measurements = sorted({m for m, _ in minutes})
    for measurement, bucket, partial in _raw_parts(device_id, measurements, start, end, MINUTE_MS):
        if (measurement, bucket) in minutes:
            found[(measurement, bucket)] = partial
    return found


def after_delete(device_id: int, start: int | None, end: int | None, fields: Sequence[str] | None) -> None:
    """Keep rollups true after points were deleted: drop covered buckets, recompute the cut ones."""
    measurement_filter = {"measurement__in": list(fields)} if fields else {}
    if start is None and end is None:
        for model in (RollupMinute, RollupHour, RollupMarker):
            model.objects.filter(device_id=device_id, **measurement_filter).delete()
        return
    lo = start if start is not None else -(2**62)
    hi = end if end is not None else 2**62
    for model, size in ((RollupMinute, MINUTE_MS), (RollupHour, HOUR_MS)):
        model.objects.filter(device_id=device_id, bucket__gte=lo, bucket__lte=hi - size, **measurement_filter).delete()
    edges = [floor_to(bound, MINUTE_MS) for bound in (start, end - 1 if end is not None else None) if bound is not None]
    measurements = list(fields) if fields else _measurements_near(device_id, edges)
    mark([(device_id, m, edge) for m in measurements for edge in edges])


def _measurements_near(device_id: int, minutes: Sequence[int]) -> list[str]:
    found: set[str] = set()
    for minute in minutes:
        hour = floor_to(minute, HOUR_MS)
        for model in (RollupMinute, RollupHour):
            rows = model.objects.filter(device_id=device_id, bucket__gte=hour, bucket__lt=hour + HOUR_MS)
            found.update(rows.values_list("measurement", flat=True))
    return sorted(found)


def delete_device(device_id: int) -> None:
    """Every tier of a device's telemetry, also when the device row is already gone."""
    with transaction.atomic():
        for model in (TelemetryPoint, LatestValue, RollupMinute, RollupHour, RollupMarker, RollupWatermark):
            model.objects.filter(device_id=device_id).delete()


TIER_MODELS = {"1m": RollupMinute, "1h": RollupHour}


def export_rollups(device_id: int, tier: str, after: int | None, limit: int) -> list[Part]:
    """A device's rollups of a tier after a bucket, in bucket then measurement order."""
    rows = TIER_MODELS[tier].objects.filter(device_id=device_id)
    if after is not None:
        rows = rows.filter(bucket__gt=after)
    rows = rows.order_by("bucket", "measurement").values_list(
        "measurement", "bucket", "count", "minimum", "maximum", "total"
    )
    return [(m, b, Partial(n, lo, hi, s)) for m, b, n, lo, hi, s in rows[:limit]]


def import_rollups(device_id: int, tier: str, parts: Sequence[Part]) -> None:
    """Rollups copied from another backend, for buckets this one cannot compute from its own points.

    A bucket holding copied raw points is left to the rollup pass (the copy marked it); the others
    are stored as pruned (their source is elsewhere), an hour only when no minutes back it here.
    """
    if not parts:
        return
    model, size = TIER_MODELS[tier], (MINUTE_MS if tier == "1m" else HOUR_MS)
    start, end = min(p[1] for p in parts), max(p[1] for p in parts) + size
    raw = _raw_parts(device_id, sorted({p[0] for p in parts}), start, end, size)
    with_points = {(m, b) for m, b, _ in raw}
    with_minutes = set()
    if tier == "1h":
        minutes = RollupMinute.objects.filter(device_id=device_id, bucket__gte=start, bucket__lt=end)
        with_minutes = {(m, floor_to(b, HOUR_MS)) for m, b in minutes.values_list("measurement", "bucket")}
    rows = [
        model(
            device_id=device_id,
            measurement=m,
            bucket=b,
            count=p.count,
            minimum=p.minimum,
            maximum=p.maximum,
            total=p.total,
            source_pruned=(m, b) not in with_minutes,
        )  # fmt: skip
        for m, b, p in parts
        if (m, b) not in with_points
    ]
    keys = {(row.measurement, row.bucket) for row in rows}
    existing = model.objects.filter(device_id=device_id, bucket__gte=start, bucket__lt=end)
    replaced = [pk for pk, m, b in existing.values_list("pk", "measurement", "bucket") if (m, b) in keys]
    with transaction.atomic():
        model.objects.filter(pk__in=replaced).delete()
        model.objects.bulk_create(rows)
