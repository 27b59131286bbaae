"""Device health: never_seen → online ⇄ stale → offline, each change recorded and told to the owner.

Changes happen on events (telemetry, heartbeat, status messages, last will) and, for
silence, in a periodic sweep. Each change is one conditional UPDATE, so two workers
seeing the same event record it once.
"""

import atexit
import json
import logging
import threading
from collections import defaultdict
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connection, transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from iotflow.cache import OUTAGE_ERRORS
from iotflow.per_process import PerProcess
from notifications import live, notify_many
from notifications.models import Notification

from .models import Device, Health, HealthEvent

log = logging.getLogger(__name__)

LEVELS = {Health.ONLINE: "success", Health.STALE: "warning", Health.OFFLINE: "warning"}
# Devices changed in one transaction: bounds how long their rows stay locked against last-seen writes.
TRANSITION_CHUNK = 500


def transition(device_id: int, state: str, reason: str, *, when=None) -> bool:
    """Move the device to ``state`` unless it is there already; True if it changed."""
    return bool(transition_many({device_id: reason}, state, when=when))


def transition_many(reasons: dict[int, str], state: str, *, when=None, still: Q | None = None) -> list[int]:
    """Move each device of ``reasons`` (id → what caused the change) to ``state`` unless it is there already.

    ``still``: a condition the locked row must meet as well (a sweep's "still silent"). Devices go in
    transactions of up to TRANSITION_CHUNK, rows locked in id order; each writes its health events and
    the owners' notifications in one statement each. A fleet coming back after an outage, or a sweep
    finding many devices silent, costs a few statements instead of five per device. Returns the ids
    of the devices that changed.
    """
    now = when or timezone.now()
    ids = sorted(reasons)
    changed: list[int] = []
    for start in range(0, len(ids), TRANSITION_CHUNK):
        chunk = {device_id: reasons[device_id] for device_id in ids[start : start + TRANSITION_CHUNK]}
        changed += _transition_chunk(chunk, state, now, still)
    return changed


def _transition_chunk(reasons: dict[int, str], state: str, now, still: Q | None) -> list[int]:
    with transaction.atomic():
        devices = list(
            Device.objects.select_for_update()
            .select_related("owner")
            .filter(pk__in=list(reasons))
            .filter(still or Q())
            .exclude(health=state)
            .order_by("pk")
        )
        if not devices:
            return []
        by_reason: dict[str, list[int]] = defaultdict(list)
        for device in devices:
            by_reason[reasons[device.pk]].append(device.pk)
        for reason, ids in by_reason.items():
            Device.objects.filter(pk__in=ids).update(health=state, health_since=now, health_reason=reason)
        HealthEvent.objects.bulk_create(
            HealthEvent(device_id=device.pk, state=state, previous=device.health, reason=reasons[device.pk], at=now)
            for device in devices
        )
        since = now.isoformat()
        for device in devices:
            data = {"health": state, "previous": device.health, "reason": reasons[device.pk], "since": since}
            live.publish_device_event(device.pk, "device_health", data)
        notify_many([_health_notification(device, state, reasons[device.pk]) for device in devices])
    return [device.pk for device in devices]


def _health_notification(device: Device, state: str, reason: str) -> Notification:
    was, now = Health(device.health).label, Health(state).label
    return Notification(
        user=device.owner,
        level=LEVELS[state],
        title=f"{device.name} is {now}",
        message=f"{device.name} went from {was} to {now} ({reason}).",
        device=device,
        kind=f"device_{state}",
    )


def mark_seen(
    device: Device, metadata: dict | None = None, *, reason: str, force: bool = False, at: datetime | None = None
) -> None:
    """The device was heard from: record when (and its metadata), and make it online.

    At most one row write per LAST_SEEN_RESOLUTION_SECONDS per device (the ``seen:<id>`` gate),
    unless ``force``: explicit status messages and heartbeats always count, at once. Telemetry
    goes through this process's ``SeenBuffer``, which writes every device heard from in the
    last LAST_SEEN_FLUSH_SECONDS in one statement (0 writes at once, as ``force`` does). ``at``:
    when it was heard from, if the caller has already read the clock for it (now otherwise).
    """
    entry = Seen(at or timezone.now(), metadata or None, reason)
    if force:
        cache.set(gate_key(device.pk), 1, settings.LAST_SEEN_RESOLUTION_SECONDS)
        record_seen({device.pk: entry})
    elif settings.LAST_SEEN_FLUSH_SECONDS > 0:
        seen_buffer().add(device.pk, entry)
    else:
        record_seen(open_gates({device.pk: entry}))


def gate_key(device_id: int) -> str:
    return f"seen:{device_id}"


class Seen(NamedTuple):
    at: datetime
    metadata: dict | None
    reason: str


def open_gates(entries: dict[int, Seen]) -> dict[int, Seen]:
    """The entries whose device's gate was closed, closing it for LAST_SEEN_RESOLUTION_SECONDS."""
    timeout = settings.LAST_SEEN_RESOLUTION_SECONDS
    if timeout <= 0:
        return entries
    ids = list(entries)
    client = _redis_client()
    if client is None:
        passed = [cache.add(gate_key(device_id), 1, timeout) for device_id in ids]
    else:
        pipeline = client.pipeline(transaction=False)
        for device_id in ids:
            pipeline.set(cache.make_and_validate_key(gate_key(device_id)), 1, nx=True, ex=timeout)
        try:
            passed = [bool(result) for result in pipeline.execute()]
        except OUTAGE_ERRORS:
            passed = [True] * len(ids)  # as the tolerant cache: without Redis every gate is open
    return {device_id: entries[device_id] for device_id, ok in zip(ids, passed, strict=True) if ok}


def _redis_client():
    """The Redis client behind the default cache, for pipelined gates; None for other caches."""
    backend = getattr(cache, "_cache", None)
    return backend.get_client(write=True) if isinstance(backend, RedisCacheClient) else None


def record_seen(entries: dict[int, Seen]) -> None:
    """Write the devices' last-seen times (and metadata); devices that were not online become online.

    One transaction; rows are locked in id order, so concurrent writers never deadlock.
    """
    if not entries:
        return
    ids = sorted(entries)
    with transaction.atomic():
        list(Device.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
        if connection.vendor == "postgresql":
            returning = _record_seen_postgresql(ids, entries)
        else:
            for device_id in ids:
                changes: dict = {
                    "last_seen": Greatest(
                        Coalesce("last_seen", Value(entries[device_id].at)), Value(entries[device_id].at)
                    )
                }
                if entries[device_id].metadata:
                    changes["last_metadata"] = entries[device_id].metadata
                Device.objects.filter(pk=device_id).update(**changes)
            returning = list(Device.objects.filter(pk__in=ids).values_list("pk", "health", "health_since"))
    # Heard from before it went offline (a last will, say, handled while this entry waited): it stays so.
    returning_ones = {
        device_id: entries[device_id].reason
        for device_id, state, since in returning
        if state != Health.ONLINE and (since is None or entries[device_id].at > since)
    }
    transition_many(returning_ones, Health.ONLINE)


def _record_seen_postgresql(ids: list[int], entries: dict[int, Seen]) -> list[tuple]:
    """One UPDATE over array parameters for every device (the ORM would build one statement each)."""
    table = connection.ops.quote_name(Device._meta.db_table)
    metadata = [json.dumps(entries[i].metadata, cls=DjangoJSONEncoder) if entries[i].metadata else None for i in ids]
    sql = (
        f"UPDATE {table} AS d SET last_seen = GREATEST(COALESCE(d.last_seen, v.at), v.at), "  # noqa: S608
        "last_metadata = COALESCE(v.metadata::jsonb, d.last_metadata) "
        "FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS v(id, at, metadata) "
        "WHERE d.id = v.id RETURNING d.id, d.health, d.health_since"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids, [entries[i].at for i in ids], metadata])
        return cursor.fetchall()


def _newer(older: Seen | None, newer: Seen | None) -> Seen:
    """The later of two entries of a device, keeping the earlier metadata when the later has none."""
    if older is None or newer is None:
        return older or newer  # type: ignore[return-value]
    if newer.at < older.at:
        older, newer = newer, older
    return newer if newer.metadata is not None else newer._replace(metadata=older.metadata)


class SeenBuffer:
    """Devices heard from by this process, written together every LAST_SEEN_FLUSH_SECONDS by one thread.

    A request or an MQTT batch only puts the device in a dictionary; the thread opens the gates
    of all of them in one Redis round trip and writes those that passed in one statement. A
    failed write keeps the entries for the next round; entries of a process that dies before
    its next round are lost, which costs at most that much of a last-seen time (the device's
    next message records it again).
    """

    def __init__(self, interval: float):
        self.interval = interval
        self.lock = threading.Lock()
        self.pending: dict[int, Seen] = {}
        self.passed: dict[int, Seen] = {}  # through their gate, but not written yet (the write failed)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="last-seen", daemon=True)
        self.thread.start()
        atexit.register(self.flush)

    def add(self, device_id: int, entry: Seen) -> None:
        with self.lock:
            self.pending[device_id] = _newer(self.pending.get(device_id), entry)

    def flush(self) -> None:
        """Open the gates of the pending devices and write those that passed (and those a failed round kept)."""
        with self.lock:
            entries, self.pending = self.pending, {}
            passed, self.passed = self.passed, {}
        for device_id, entry in open_gates({i: e for i, e in entries.items() if i not in passed}).items():
            passed[device_id] = entry
        for device_id in passed.keys() & entries.keys():
            passed[device_id] = _newer(passed[device_id], entries[device_id])
        if not passed:
            return
        try:
            record_seen(passed)
        except Exception:
            with self.lock:  # their gates are closed now: the next round writes them without asking again
                for device_id, entry in passed.items():
                    self.passed[device_id] = _newer(entry, self.passed.get(device_id))
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is pending and end the thread (shutdown and tests)."""
        self.stopping.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self.stopping.wait(self.interval):
                self._flush_logged()
            self._flush_logged()
        finally:
            connection.close()  # this thread's own connection

    def _flush_logged(self) -> None:
        try:
            close_old_connections()
            self.flush()
        except Exception:  # the database or Redis is away: keep the entries, try again next round
            waiting = len(self.pending) + len(self.passed)
            log.warning("Last-seen times of %d devices not written yet", waiting, exc_info=True)


_buffer = PerProcess(lambda: SeenBuffer(settings.LAST_SEEN_FLUSH_SECONDS))


def seen_buffer() -> SeenBuffer:
    """This process's buffer, started on first use (and again in a forked child)."""
    return _buffer.get()


def sweep(now=None) -> int:
    """Mark silent devices stale (past their expected interval) or offline (past the offline limit)."""
    now = now or timezone.now()
    offline_before = now - timedelta(seconds=settings.DEVICE_OFFLINE_SECONDS)
    still_silent = Q(last_seen__lt=offline_before)
    silent = Device.objects.filter(still_silent, health__in=[Health.ONLINE, Health.STALE])
    reasons = dict.fromkeys(silent.values_list("pk", flat=True), "silence")
    changed = len(transition_many(reasons, Health.OFFLINE, when=now, still=still_silent))
    candidates = Device.objects.filter(health=Health.ONLINE, expected_interval__isnull=False)
    overdue = {
        device_id: "silence"
        for device_id, last_seen, interval in candidates.values_list("pk", "last_seen", "expected_interval")
        if last_seen is None or now - last_seen > timedelta(seconds=interval)
    }
    return changed + len(transition_many(overdue, Health.STALE, when=now))
