"""Device health: never_seen → online ⇄ stale → offline, each change recorded and told to the owner.

Changes happen on events (telemetry, heartbeat, status messages, last will) and, for
silence, in a periodic sweep. Each change is one conditional UPDATE, so two workers
seeing the same event record it once.
"""

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from notifications import live, notify

from .models import Device, Health, HealthEvent

LEVELS = {Health.ONLINE: "success", Health.STALE: "warning", Health.OFFLINE: "warning"}


def transition(device_id: int, state: str, reason: str, *, when=None) -> bool:
    """Move the device to ``state`` unless it is there already; True if it changed."""
    now = when or timezone.now()
    with transaction.atomic():
        device = (
            Device.objects.select_for_update()
            .select_related("owner")
            .filter(pk=device_id)
            .exclude(health=state)
            .first()
        )
        if device is None:
            return False
        previous = device.health
        Device.objects.filter(pk=device_id).update(health=state, health_since=now, health_reason=reason)
        HealthEvent.objects.create(device_id=device_id, state=state, previous=previous, reason=reason, at=now)
        live.publish_device_event(
            device_id,
            "device_health",
            {"health": state, "previous": previous, "reason": reason, "since": now.isoformat()},
        )
        notify(
            device.owner,
            LEVELS[state],
            f"{device.name} is {Health(state).label}",
            f"{device.name} went from {Health(previous).label} to {Health(state).label} ({reason}).",
            device=device,
            kind=f"device_{state}",
        )
    return True


def mark_seen(device: Device, metadata: dict | None = None, *, reason: str, force: bool = False) -> None:
    """The device was heard from: record when, and make it online.

    At most one row write per LAST_SEEN_RESOLUTION_SECONDS per device, unless ``force``
    (explicit status messages and heartbeats always count).
    """
    gate = f"seen:{device.pk}"
    if force:
        cache.set(gate, 1, settings.LAST_SEEN_RESOLUTION_SECONDS)
    elif not cache.add(gate, 1, settings.LAST_SEEN_RESOLUTION_SECONDS):
        return
    changes: dict = {"last_seen": timezone.now()}
    if metadata:
        changes["last_metadata"] = metadata
    Device.objects.filter(pk=device.pk).update(**changes)
    if Device.objects.filter(pk=device.pk).exclude(health=Health.ONLINE).exists():
        transition(device.pk, Health.ONLINE, reason)


def sweep(now=None) -> int:
    """Mark silent devices stale (past their expected interval) or offline (past the offline limit)."""
    now = now or timezone.now()
    offline_before = now - timedelta(seconds=settings.DEVICE_OFFLINE_SECONDS)
    changed = 0
    silent = Device.objects.filter(health__in=[Health.ONLINE, Health.STALE], last_seen__lt=offline_before)
    for device_id in silent.values_list("pk", flat=True):
        changed += transition(device_id, Health.OFFLINE, "silence", when=now)
    candidates = Device.objects.filter(health=Health.ONLINE, expected_interval__isnull=False)
    for device_id, last_seen, interval in candidates.values_list("pk", "last_seen", "expected_interval"):
        if last_seen is None or now - last_seen > timedelta(seconds=interval):
            changed += transition(device_id, Health.STALE, "silence", when=now)
    return changed
