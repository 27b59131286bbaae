"""Rollups and retention of the IoTDB backend.

IoTDB expires raw points itself (TTL rules per path, set here from the retention settings and
per-device policies) and aggregates raw points fast from its own file statistics, so IoTFlow
needs rollups only for what IoTDB is about to expire: a device's buckets are rolled up a day
before their raw points expire (``rollup_target``), from the raw points, into
``<database>.rollup_1m`` and ``rollup_1h``, and a watermark per device records how far. Queries
read rollups before the watermark and raw points after it.

A point that arrives for a minute already rolled up (a device replaying a months-old backlog)
leaves a marker; the next pass recomputes that minute from raw points and its hour from the
minutes. A point past raw retention is not stored at all (IoTDB refuses it).
"""

import logging

from iotdb.utils.exception import StatementExecutionException

from devices.models import Device
from telemetry import retention
from telemetry.models import RollupMarker, RollupWatermark
from telemetry.rollups import HOUR_MS, MINUTE_MS, Part, Segment, ceil_to, floor_to, merged, split
from telemetry.timeparse import now_ms

from . import iotdb_schema as schema

log = logging.getLogger(__name__)

DAY_MS = retention.DAY_MS
# Rollups are computed this long before raw points expire: time enough for a stopped beat to catch up.
FINALIZE_MARGIN_MS = DAY_MS
TIER_DAYS = {"raw": "raw_days", "1m": "minute_days", "1h": "hour_days"}


def rollup_target(policy: retention.Policy, now: int) -> int:
    """Buckets before this hour are due for rollup; later points are read raw."""
    if policy.raw_days is None:
        return schema.LONG_MIN
    return floor_to(now - policy.raw_days * DAY_MS + FINALIZE_MARGIN_MS, HOUR_MS)


def rolled_up_through(device_id: int, policy: retention.Policy, now: int) -> int | None:
    """Rollups hold every bucket before this, raw points answer from it on; None: raw points answer all."""
    stored = RollupWatermark.objects.filter(device_id=device_id).values_list("through", flat=True).first()
    if stored is not None or policy.raw_days is None:
        return stored
    return initial_through(policy, now)


def initial_through(policy: retention.Policy, now: int) -> int:
    """Before any pass, rollups can only hold what is older than the raw points (copied ones, say)."""
    return ceil_to(now - policy.raw_days * DAY_MS, HOUR_MS)


def read_plan(start: int, end: int, window_ms: int, through: int | None, expiry: int) -> list[Segment]:
    """Where each stretch of [start, end) is read: rollups before ``through``, raw points from it on.

    Before ``through``, the coarsest rollup tier that fits each stretch answers it (``split``); an
    edge shorter than a minute is read raw, as far as its points have not expired (``expiry``).
    Each stretch is one query, whatever the aggregation: its partials answer all of them.
    """
    segments: list[Segment] = []
    if through is not None and start < through:
        for segment in split(start, min(end, through), window_ms):
            if segment.tier != "raw":
                segments.append(segment)
            elif segment.end > expiry:
                segments.append(Segment("raw", max(segment.start, expiry), segment.end))
    raw_start = start if through is None else max(start, through)
    if raw_start < end:
        segments.append(Segment("raw", raw_start, end))
    return segments


def refresh(backend) -> dict:
    """Roll up every device's buckets that are due, then the minutes late points changed."""
    now = now_ms()
    watermarks = dict(RollupWatermark.objects.values_list("device_id", "through"))
    devices = 0
    for device_id in Device.objects.order_by("pk").values_list("pk", flat=True).iterator():
        policy = retention.policy_for(device_id)
        if policy.raw_days is None:
            continue  # raw points are kept for ever and answer every range
        target = rollup_target(policy, now)
        through = watermarks.get(device_id, initial_through(policy, now))
        if through >= target:
            continue
        while through < target:
            upto = min(target, through + DAY_MS)
            roll_up(backend, device_id, through, upto)
            through = upto
            RollupWatermark.objects.update_or_create(device_id=device_id, defaults={"through": through})
        devices += 1
    return {"devices": devices, "late_minutes": fold_late(backend, now)}


def roll_up(backend, device_id: int, start: int, end: int) -> None:
    """1-minute and 1-hour rollups of [start, end) (whole hours) from the raw points."""
    minutes = merged(backend.raw_parts(device_id, None, start, end, MINUTE_MS), MINUTE_MS)
    write(backend, device_id, "1m", minutes)
    write(backend, device_id, "1h", merged(minutes, HOUR_MS))


def write(backend, device_id: int, tier: str, parts: list[Part]) -> None:
    rows = schema.rollup_tablet(backend.paths.rollup(tier, device_id), parts)
    if rows is None:
        return
    with backend.session() as session:
        backend._ensure_database(session)  # noqa: SLF001 (the backend's own helper)
        session.insert_tablet(rows.tablet())


def fold_late(backend, now: int) -> int:
    """Recompute the minutes (and their hours) that points arrived for after they were rolled up."""
    folded = 0
    while markers := list(
        RollupMarker.objects.order_by("pk").values_list("pk", "device_id", "measurement", "bucket")[:1000]
    ):
        watermarks = dict(
            RollupWatermark.objects.filter(device_id__in={m[1] for m in markers}).values_list("device_id", "through")
        )
        for device_id, measurement, minute in sorted({(d, m, b) for _, d, m, b in markers}):
            through = watermarks.get(device_id)
            policy = retention.policy_for(device_id)
            if through is None or minute >= through or policy.raw_days is None:
                continue  # not rolled up yet: the regular pass takes it
            if minute < now - policy.raw_days * DAY_MS + HOUR_MS:
                continue  # expiring: IoTDB refused the points or drops them within the hour
            fold_minute(backend, device_id, measurement, minute)
            folded += 1
        RollupMarker.objects.filter(pk__in=[m[0] for m in markers]).delete()
    return folded


def fold_minute(backend, device_id: int, measurement: str, minute: int) -> None:
    parts = backend.raw_parts(device_id, [measurement], minute, minute + MINUTE_MS, MINUTE_MS)
    write(backend, device_id, "1m", merged(parts, MINUTE_MS))
    hour = floor_to(minute, HOUR_MS)
    write(backend, device_id, "1h", backend.rollup_parts(device_id, [measurement], "1m", hour, hour + HOUR_MS, HOUR_MS))


def desired_ttl(paths: schema.Paths, default: retention.Policy, overrides: dict[int, retention.Policy]) -> dict:
    """TTL rules (path → milliseconds) for the retention settings and the devices' own policies."""
    patterns = {"raw": f"{paths.database}.devices.**", "1m": f"{paths.database}.rollup_1m.**"}
    patterns["1h"] = f"{paths.database}.rollup_1h.**"
    rules: dict[str, int] = {}
    for tier, pattern in patterns.items():
        days = getattr(default, TIER_DAYS[tier])
        if days is not None:
            rules[pattern] = days * DAY_MS
    for device_id, policy in sorted(overrides.items()):
        for tier in patterns:
            days = getattr(policy, TIER_DAYS[tier])
            if days != getattr(default, TIER_DAYS[tier]):
                path = paths.device(device_id) if tier == "raw" else paths.rollup(tier, device_id)
                rules[path] = schema.LONG_MAX if days is None else days * DAY_MS
    return rules


def ttl_changes(current: dict[str, int | None], desired: dict[str, int], database: str) -> tuple[list[str], dict]:
    """Rules to remove (ours, no longer wanted) and rules to set (new or changed)."""
    ours = {path for path in current if path.startswith(f"{database}.")}
    unset = sorted(ours - desired.keys())
    changed = {path: ms for path, ms in sorted(desired.items()) if current.get(path, -1) != ms}
    return unset, changed


def apply_retention(backend) -> dict:
    """Bring IoTDB's TTL rules in step with the policies, and delete series of deleted devices."""
    desired = desired_ttl(backend.paths, retention.default_policy(), retention.overrides.get())
    _, rows = backend.query("SHOW ALL TTL")
    unset, changed = ttl_changes(schema.ttl_rules(rows), desired, backend.paths.database)
    with backend.session() as session:
        for path in unset:
            session.execute_non_query_statement(f"UNSET TTL TO {path}")
        for path, ms in changed.items():
            session.execute_non_query_statement(f"SET TTL TO {path} {ms}")
    return {"ttl_set": len(changed), "ttl_unset": len(unset), "orphans": delete_orphans(backend)}


def delete_orphans(backend) -> int:
    """Series of devices deleted while IoTDB was unreachable."""
    _, rows = backend.query(f"SHOW DEVICES {backend.paths.database}.**")
    stored = {backend.paths.device_id(str(values[0])) for _, values in rows} - {None}
    existing = set(Device.objects.filter(pk__in=stored).values_list("pk", flat=True))
    for device_id in sorted(stored - existing):
        delete_device(backend, device_id)
    return len(stored - existing)


def delete_device(backend, device_id: int) -> None:
    """Every series of the device in every tier, and its rollup bookkeeping."""
    paths = backend.paths
    with backend.session() as session:
        for path in (paths.device(device_id), paths.rollup("1m", device_id), paths.rollup("1h", device_id)):
            try:
                session.execute_non_query_statement(f"DELETE TIMESERIES {path}.*")
            except StatementExecutionException as exc:
                if not schema.names_missing(str(exc)):
                    raise
    RollupMarker.objects.filter(device_id=device_id).delete()
    RollupWatermark.objects.filter(device_id=device_id).delete()


def export_rollups(backend, device_id: int, tier: str, after: int | None, limit: int) -> list[Part]:
    """A device's rollups of a tier after a bucket; each row of the answer is a whole bucket."""
    path = backend.paths.rollup(tier, device_id)
    start = None if after is None else after + 1
    columns, rows = backend.query(
        f"SELECT * FROM {path}{schema.time_filter(start, None)} ORDER BY TIME ASC LIMIT {limit}"
    )
    return schema.stored_rollup_parts(columns, rows)


def import_rollups(backend, device_id: int, tier: str, parts: list[Part]) -> None:
    """Rollups copied from another backend: only buckets older than the raw points IoTDB keeps."""
    policy = retention.policy_for(device_id)
    if policy.raw_days is not None:
        before = initial_through(policy, now_ms())
        parts = [part for part in parts if part[1] < before]
    write(backend, device_id, tier, parts)
