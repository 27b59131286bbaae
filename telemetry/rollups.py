"""Rollup tiers: the arithmetic every backend shares, and the beat entry point that refreshes them.

Telemetry is kept in three tiers: raw points, 1-minute and 1-hour rollups. A rollup bucket
holds count, minimum, maximum and sum of a measurement's numeric points, which compose
exactly: counts and sums add up, minima and maxima take the extreme, and the mean is
sum / count. So an aggregate over a long range is answered from the coarsest tier whose
buckets fit inside its windows, with the finer tiers (and raw points) filling the edges;
`split()` plans that, `finish()` turns the composed parts into the answer (`finish_band()` into
the answer with each window's minimum and maximum beside it, from the same parts).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from telemetry.points import Bucket

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
TIER_MS = {"1h": HOUR_MS, "1m": MINUTE_MS}
COARSEST_FIRST = ("1h", "1m")


@dataclass(slots=True)
class Partial:
    """Count, minimum, maximum and sum of some numeric points: enough to merge and to answer any aggregation."""

    count: int
    minimum: float
    maximum: float
    total: float

    @classmethod
    def of(cls, values: Iterable[float]) -> "Partial | None":
        values = [float(v) for v in values]
        if not values:
            return None
        return cls(len(values), min(values), max(values), sum(values))

    def merge(self, other: "Partial") -> "Partial":
        return Partial(
            self.count + other.count,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
            self.total + other.total,
        )

    def value(self, function: str) -> float:
        if function == "mean":
            return self.total / self.count
        if function == "min":
            return self.minimum
        if function == "max":
            return self.maximum
        if function == "sum":
            return self.total
        if function == "count":
            return float(self.count)
        raise ValueError(f"unknown aggregation {function!r}")


# (measurement, bucket start in epoch ms, partial)
Part = tuple[str, int, Partial]


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of a query range answered from one tier ("raw", "1m" or "1h")."""

    tier: str
    start: int
    end: int


def floor_to(ms: int, size: int) -> int:
    return ms // size * size


def ceil_to(ms: int, size: int) -> int:
    return -(-ms // size) * size


def split(start: int, end: int, window_ms: int, tiers: Sequence[str] = COARSEST_FIRST) -> list[Segment]:
    """Cut [start, end) into segments, each answered by the coarsest tier that fits it exactly.

    A tier answers a stretch when the window is a whole number of its buckets and the stretch
    starts and ends on its bucket boundaries; what is left at the edges goes to finer tiers, the
    last of which is the raw points.
    """
    if start >= end:
        return []
    for position, tier in enumerate(tiers):
        size = TIER_MS[tier]
        if window_ms % size:
            continue
        lo, hi = ceil_to(start, size), floor_to(end, size)
        if lo >= hi:
            continue
        finer = tiers[position + 1 :]
        return [*split(start, lo, window_ms, finer), Segment(tier, lo, hi), *split(hi, end, window_ms, finer)]
    return [Segment("raw", start, end)]


def combine(parts: Iterable[Part], window_ms: int) -> dict[str, dict[int, Partial]]:
    """Merge parts into the windows (aligned to the epoch) they fall in, per measurement."""
    windows: dict[str, dict[int, Partial]] = {}
    for measurement, ts, partial in parts:
        window = floor_to(ts, window_ms)
        series = windows.setdefault(measurement, {})
        current = series.get(window)
        series[window] = partial if current is None else current.merge(partial)
    return windows


@dataclass(frozen=True, slots=True)
class Band:
    """One window of an aggregation with the extremes of its points: a chart's line and the band around it."""

    ts: int
    value: float | None
    minimum: float | None
    maximum: float | None
    count: int


def finish(fields: Sequence[str], parts: Iterable[Part], window_ms: int, function: str) -> dict[str, list[Bucket]]:
    """The backend contract's answer: every asked field, its non-empty windows in time order."""
    return {
        field: [Bucket(ts, partial.value(function), partial.count) for ts, partial in windows]
        for field, windows in _filled(fields, parts, window_ms).items()
    }


def finish_band(fields: Sequence[str], parts: Iterable[Part], window_ms: int, function: str) -> dict[str, list[Band]]:
    """``finish`` with each window's minimum and maximum beside its value: one pass over the parts answers all three."""
    return {
        field: [
            Band(ts, partial.value(function), partial.minimum, partial.maximum, partial.count)
            for ts, partial in windows
        ]
        for field, windows in _filled(fields, parts, window_ms).items()
    }


def _filled(fields: Sequence[str], parts: Iterable[Part], window_ms: int) -> dict[str, list[tuple[int, Partial]]]:
    """Every asked field's non-empty windows, oldest first."""
    windows = combine(parts, window_ms)
    return {
        field: [(ts, partial) for ts, partial in sorted(windows.get(field, {}).items()) if partial.count]
        for field in fields
    }


def merged(parts: Iterable[Part], size: int) -> list[Part]:
    """Parts merged per measurement and bucket of ``size`` (1-hour parts from 1-minute ones, say)."""
    return [(m, ts, p) for m, series in combine(parts, size).items() for ts, p in sorted(series.items())]


def refresh() -> dict:
    """Bring the configured backend's rollups up to date (beat runs this every minute)."""
    from telemetry.backends import get_backend

    return get_backend().refresh_rollups()
