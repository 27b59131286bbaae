"""The figures of the overview page: device counts, today's messages, and a sparkline per device."""

from dataclasses import dataclass
from datetime import datetime, time

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from devices.models import Device, Health
from telemetry.backends import get_backend
from telemetry.timeparse import now_ms

from .series import window_for

SPARKLINE_POINTS = 48
SPARKLINE_WIDTH, SPARKLINE_HEIGHT = 120, 32
DAY_MS = 86_400_000
MESSAGES_CACHE_SECONDS = 60
# Measurements a sparkline prefers when a device reports several (else the first that is not device state).
PREFERRED = ("temperature", "power_consumption", "humidity")


def device_counts(devices: QuerySet[Device]) -> dict[str, int]:
    return devices.aggregate(
        total=Count("pk"),
        online=Count("pk", filter=Q(health=Health.ONLINE)),
        stale=Count("pk", filter=Q(health=Health.STALE)),
        offline=Count("pk", filter=Q(health=Health.OFFLINE)),
        never_seen=Count("pk", filter=Q(health=Health.NEVER_SEEN)),
        maintenance=Count("pk", filter=Q(status=Device.Status.MAINTENANCE)),
    )


def start_of_today_ms() -> int:
    """Midnight in the active (the user's) time zone."""
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    return int(midnight.timestamp() * 1000)


def messages_today(user, device_ids: list[int]) -> int:
    """Messages stored since midnight: per device, the count of its most frequent measurement.

    A message carries several measurements, so counting points would count it several times.
    Cached a minute per user: the figure is a glance, not an audit.
    """
    start = start_of_today_ms()
    key = f"overview-messages:{user.pk}:{start}"
    found = cache.get(key)
    if found is not None:
        return found
    backend, end, total = get_backend(), now_ms(), 0
    for device_id in device_ids:
        fields = list(backend.latest(device_id))
        if not fields:
            continue
        # One window wider than the range: a single bucket per measurement on every backend.
        counts = backend.aggregate(device_id, fields, start=start, end=end, window_ms=end + 1, function="count")
        total += max((int(b.value or 0) for buckets in counts.values() for b in buckets), default=0)
    cache.set(key, total, MESSAGES_CACHE_SECONDS)
    return total


@dataclass
class Sparkline:
    measurement: str
    points: str  # SVG polyline points
    low: float
    high: float
    latest: float


def sparkline(device_id: int) -> Sparkline | None:
    """The last 24 hours of the device's first numeric measurement, as an SVG polyline."""
    backend = get_backend()
    latest = backend.latest(device_id)
    numeric = [name for name, p in sorted(latest.items()) if isinstance(p.value, int | float)]
    if not numeric:
        return None
    preferred = [n for n in PREFERRED if n in numeric] or [n for n in numeric if n not in settings.DEVICE_STATE_FIELDS]
    name = (preferred or numeric)[0]
    end = now_ms()
    start = end - DAY_MS
    window = window_for(start, end, SPARKLINE_POINTS)
    buckets = [
        b
        for b in backend.aggregate(device_id, [name], start=start, end=end, window_ms=window, function="mean")[name]
        if b.value is not None
    ]
    if not buckets:
        return None
    # Each window at its place in the day: a device heard from only lately draws at the right end.
    places = [(min(max(b.ts + window / 2 - start, 0) / DAY_MS, 1) * SPARKLINE_WIDTH, b.value) for b in buckets]
    if len(places) == 1:  # a device that just started: a short dash rather than an invisible dot
        x, value = places[0]
        places = [
            (min(x, SPARKLINE_WIDTH - 2), value),
            (min(x + max(window / DAY_MS * SPARKLINE_WIDTH, 2), SPARKLINE_WIDTH), value),
        ]
    values = [value for _, value in places]
    low, high = min(values), max(values)
    spread = high - low
    middle = SPARKLINE_HEIGHT / 2
    coords = " ".join(
        f"{x:.1f},{(SPARKLINE_HEIGHT - 2 - (v - low) / spread * (SPARKLINE_HEIGHT - 4)) if spread else middle:.1f}"
        for x, v in places
    )
    return Sparkline(name, coords, low, high, float(latest[name].value))
