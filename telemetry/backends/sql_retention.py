"""Retention of the SQL backend: delete each tier's due rows, device by device, in small batches.

A bucket with a pending rollup marker is left for the next run: its rollups must be folded
before its source goes. Rollups whose source is deleted are flagged (``source_pruned``) from
what the delete statement reports it removed, so a late point committed at the same moment
is never mistaken for one already counted.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction

from devices.models import Device
from telemetry import retention
from telemetry.models import LatestValue, TelemetryPoint
from telemetry.rollups import HOUR_MS, MINUTE_MS
from telemetry.timeparse import now_ms

from .sql_rollups import HOURS, MARKERS, MINUTES, POINTS

BATCH = 10_000

RAW_DUE = (
    f"SELECT p.id FROM {POINTS} p WHERE p.device_id = %s AND p.ts < %s AND NOT EXISTS "
    f"(SELECT 1 FROM {MARKERS} k WHERE k.device_id = p.device_id AND k.measurement = p.measurement "
    f"AND k.bucket = p.ts / {MINUTE_MS} * {MINUTE_MS})"
)
ROLLUP_DUE = (
    "SELECT r.id FROM {table} r WHERE r.device_id = %s AND r.bucket < %s AND NOT EXISTS "
    f"(SELECT 1 FROM {MARKERS} k WHERE k.device_id = r.device_id AND k.measurement = r.measurement "
    f"AND k.bucket >= r.bucket / {HOUR_MS} * {HOUR_MS} AND k.bucket < r.bucket / {HOUR_MS} * {HOUR_MS} + {HOUR_MS})"
)


def apply(now: int | None = None) -> dict:
    """Delete every device's due raw points, latest values and rollups; returns how many of each."""
    now = now_ms() if now is None else now
    default = retention.default_policy()
    overrides = retention.overrides.get()
    deleted: Counter[str] = Counter()
    for device_id in Device.objects.order_by("pk").values_list("pk", flat=True).iterator():
        policy = overrides.get(device_id, default)
        deleted.update(apply_device(device_id, policy, now))
    return {tier: deleted[tier] for tier in ("raw", "1m", "1h")}


@dataclass(frozen=True, slots=True)
class Tier:
    """How to delete one tier's due rows, and which coarser rollups lose their source with them."""

    table: str
    due: str  # selects the ids of due rows; parameters: device id, cutoff
    flags: str | None = None  # the rollup table computed from this one
    bucket: str = ""  # SQL: the flagged rollup bucket of a deleted row
    counted: str = "1 = 1"  # SQL: the deleted row fed a rollup


RAW = Tier(POINTS, RAW_DUE, MINUTES, f"ts / {MINUTE_MS} * {MINUTE_MS}", "value_float IS NOT NULL")
MINUTE = Tier(MINUTES, ROLLUP_DUE.format(table=MINUTES), HOURS, f"bucket / {HOUR_MS} * {HOUR_MS}")
HOUR = Tier(HOURS, ROLLUP_DUE.format(table=HOURS))


def apply_device(device_id: int, policy: retention.Policy, now: int) -> Counter[str]:
    deleted: Counter[str] = Counter()
    cutoff = policy.cutoff("raw", now)
    if cutoff is not None and TelemetryPoint.objects.filter(device_id=device_id, ts__lt=cutoff).exists():
        deleted["raw"] = _delete(RAW, device_id, cutoff)
        LatestValue.objects.filter(device_id=device_id, ts__lt=cutoff).delete()
    for name, tier in (("1m", MINUTE), ("1h", HOUR)):
        cutoff = policy.cutoff(name, now)
        if cutoff is not None:
            deleted[name] = _delete(tier, device_id, cutoff)
    return deleted


def _delete(tier: Tier, device_id: int, cutoff: int) -> int:
    """Delete due rows in batches, flagging the rollups computed from what went."""
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            delete = f"DELETE FROM {tier.table} WHERE id IN ({tier.due} LIMIT {BATCH})"
            if tier.flags is None:
                cursor.execute(delete, [device_id, cutoff])
                removed = cursor.rowcount
            else:
                cursor.execute(f"{delete} RETURNING measurement, {tier.bucket}, {tier.counted}", [device_id, cutoff])
                rows = cursor.fetchall()
                removed = len(rows)
                _flag(cursor, tier.flags, device_id, sorted({(m, b) for m, b, counted in rows if counted}))
        total += removed
        if removed < BATCH:
            return total


def _flag(cursor, table: str, device_id: int, buckets: Sequence[tuple[str, int]]) -> None:
    for start in range(0, len(buckets), 1000):
        chunk = buckets[start : start + 1000]
        placeholders = ", ".join(["(%s, %s)"] * len(chunk))
        cursor.execute(
            f"WITH k (measurement, bucket) AS (VALUES {placeholders}) UPDATE {table} SET source_pruned = TRUE "
            "WHERE device_id = %s AND (measurement, bucket) IN (SELECT measurement, bucket FROM k)",
            [v for bucket in chunk for v in bucket] + [device_id],
        )
