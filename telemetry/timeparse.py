"""Timestamps as devices send them and time ranges as people ask for them, all to epoch milliseconds."""

import functools
import re
import time
from datetime import UTC, datetime

from django.conf import settings

RELATIVE = re.compile(r"^-(\d+)(ms|s|m|h|d|w)$")
DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}

# Numbers below this are epoch seconds, at or above it epoch milliseconds (1e11 s is the year 5138).
SECONDS_LIMIT = 100_000_000_000
# Years 1 to 9999, the range a datetime can show.
EARLIEST_MS = -62_135_596_800_000
LATEST_MS = 253_402_300_799_999


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_iso(ms: int) -> str:
    return to_datetime(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _in_calendar(ms: int) -> int:
    if not EARLIEST_MS <= ms <= LATEST_MS:
        raise ValueError("is outside the years 1 to 9999")
    return ms


def _min_ms() -> int:
    return _parse_setting(settings.TELEMETRY_MIN_TIMESTAMP)


@functools.lru_cache(maxsize=8)
def _parse_setting(value: str) -> int:
    return parse_absolute(value)


def parse_absolute(value: str | int | float) -> int:
    """ISO 8601, ``YYYY-MM-DD HH:MM:SS`` (UTC unless an offset is given), epoch s or ms."""
    if isinstance(value, bool):
        raise ValueError("must be a timestamp, not a boolean")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return _in_calendar(int(value * 1000) if abs(value) < SECONDS_LIMIT else int(value))
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string or epoch seconds/milliseconds")
    text = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return parse_absolute(float(text) if "." in text else int(text))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "is not a recognised timestamp: use ISO 8601, 'YYYY-MM-DD HH:MM:SS', epoch seconds or milliseconds"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _in_calendar(int(parsed.timestamp() * 1000))


def point_bounds() -> tuple[int, int]:
    """The earliest and latest record timestamps accepted now, for ``parse_point_timestamp``."""
    return _min_ms(), min(now_ms() + settings.TELEMETRY_MAX_FUTURE_SECONDS * 1000, LATEST_MS)


def parse_point_timestamp(value, bounds: tuple[int, int] | None = None) -> int:
    """A record's timestamp, checked against the accepted bounds; absent means now.

    ``bounds`` (from ``point_bounds()``) lets a batch read the settings and the clock once: an integer
    inside them is taken as it is, anything else is parsed and checked in full.
    """
    if type(value) is int and bounds is not None:
        ms = value * 1000 if -SECONDS_LIMIT < value < SECONDS_LIMIT else value
        if bounds[0] <= ms <= bounds[1]:
            return ms
    if value is None:
        return now_ms()
    ms = parse_absolute(value)
    if ms < _min_ms():
        raise ValueError(f"is before {settings.TELEMETRY_MIN_TIMESTAMP}, the earliest accepted time")
    if ms > now_ms() + settings.TELEMETRY_MAX_FUTURE_SECONDS * 1000:
        raise ValueError(f"is more than {settings.TELEMETRY_MAX_FUTURE_SECONDS} seconds in the future")
    return ms


def parse_query_time(value: str | None, default_ms: int) -> int:
    """A query bound: relative (``-1h``, ``-7d``), ``now``, or absolute."""
    if value is None or value == "":
        return default_ms
    text = value.strip()
    if text == "now":
        return now_ms()
    match = RELATIVE.match(text)
    if match:
        return _in_calendar(now_ms() - int(match.group(1)) * UNIT_MS[match.group(2)])
    return parse_absolute(text)


def parse_duration(value: str) -> int:
    """``30s``, ``1m``, ``1h``, ``1d`` → milliseconds."""
    match = DURATION.match(value.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError("must be a duration such as 30s, 1m, 5m, 1h or 1d")
    return int(match.group(1)) * UNIT_MS[match.group(2)]
