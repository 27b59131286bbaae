"""How long each tier of a device's telemetry is kept, and the beat entry points that enforce it.

Raw points are kept ``RETENTION_RAW_DAYS`` (90), 1-minute rollups ``RETENTION_1M_DAYS`` (365)
and 1-hour rollups ``RETENTION_1H_DAYS`` (0, for ever); a device's ``RetentionPolicy`` overrides
any of them. 0 means for ever. A coarser tier is never kept shorter than a finer one (a shorter
setting is raised to it), so a rollup outlives the points it was computed from and a long
range can always be answered from some tier. Cutoffs fall on hour boundaries, so retention
never cuts a minute or an hour bucket in two.
"""

import datetime
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from telemetry.rollups import HOUR_MS, floor_to

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
OVERRIDES_CACHE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Policy:
    """Days each tier is kept; None means for ever."""

    raw_days: int | None
    minute_days: int | None
    hour_days: int | None

    @classmethod
    def of(cls, raw: int, minute: int, hour: int) -> "Policy":
        """From settings-style values (0 = for ever), each tier at least as long as the finer one."""
        raw_days = raw or None
        minute_days = _at_least(minute or None, raw_days)
        hour_days = _at_least(hour or None, minute_days)
        return cls(raw_days, minute_days, hour_days)

    def cutoff(self, tier: str, now_ms: int) -> int | None:
        """Points of ``tier`` ("raw", "1m", "1h") older than this are due; None when kept for ever."""
        days = {"raw": self.raw_days, "1m": self.minute_days, "1h": self.hour_days}[tier]
        if days is None:
            return None
        return floor_to(now_ms - days * DAY_MS, HOUR_MS)


def _at_least(days: int | None, floor: int | None) -> int | None:
    if days is None or floor is None:
        return None
    return max(days, floor)


def default_policy() -> Policy:
    return Policy.of(settings.RETENTION_RAW_DAYS, settings.RETENTION_1M_DAYS, settings.RETENTION_1H_DAYS)


def policy_from_override(raw: int | None, minute: int | None, hour: int | None) -> Policy:
    """A device's policy: its own values where set, the settings elsewhere."""
    return Policy.of(
        settings.RETENTION_RAW_DAYS if raw is None else raw,
        settings.RETENTION_1M_DAYS if minute is None else minute,
        settings.RETENTION_1H_DAYS if hour is None else hour,
    )


class _Overrides:
    """Per-device policies, cached per process: the IoTDB write path asks for each batch."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.expires = 0.0
        self.policies: dict[int, Policy] = {}

    def get(self) -> dict[int, Policy]:
        with self.lock:
            if time.monotonic() >= self.expires:
                self.policies = load_overrides()
                self.expires = time.monotonic() + OVERRIDES_CACHE_SECONDS
            return self.policies

    def clear(self) -> None:
        with self.lock:
            self.expires = 0.0


overrides = _Overrides()


def load_overrides() -> dict[int, Policy]:
    from telemetry.models import RetentionPolicy

    rows = RetentionPolicy.objects.values_list("device_id", "raw_days", "minute_days", "hour_days")
    return {device_id: policy_from_override(raw, minute, hour) for device_id, raw, minute, hour in rows}


def policy_for(device_id: int) -> Policy:
    return overrides.get().get(device_id) or default_policy()


def apply() -> dict:
    """Delete what is due in every tier of the configured backend, then old command logs."""
    from telemetry.backends import get_backend

    overrides.clear()
    result = get_backend().apply_retention()
    result["commands"] = purge_commands()
    return result


def purge_commands(now: datetime.datetime | None = None) -> int:
    """Delete finished commands that ended more than ``COMMAND_RETENTION_DAYS`` ago (0 keeps them for ever).

    Open commands (pending, sent) are never deleted: their delivery is still under way.
    """
    from devices.models import Command

    days = settings.COMMAND_RETENTION_DAYS
    if not days:
        return 0
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    ended = Q(completed_at__lt=cutoff) | Q(completed_at__isnull=True, created_at__lt=cutoff)
    due = Command.objects.exclude(status__in=Command.OPEN).filter(ended)
    deleted = 0
    while batch := list(due.values_list("pk", flat=True)[:5000]):
        deleted += Command.objects.filter(pk__in=batch).delete()[1].get(Command._meta.label, 0)
    return deleted
