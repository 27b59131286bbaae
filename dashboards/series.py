"""Chart data from any telemetry backend, never more than CHART_MAX_POINTS buckets per series.

The window is chosen from the range so that the backend's ``aggregate_band()`` returns at most N
buckets, and each bucket carries the minimum and maximum next to the chosen aggregate, so a
spike inside a long window still shows. A 30-day chart of a device sending every second costs
the browser as many points as a one-hour chart.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from devices.api.permissions import devices_visible_to
from telemetry.backends import get_backend
from telemetry.timeparse import UNIT_MS, parse_duration

from .ranges import TimeRange

SECOND, MINUTE, HOUR, DAY = UNIT_MS["s"], UNIT_MS["m"], UNIT_MS["h"], UNIT_MS["d"]
# Windows people read easily; the chosen window is the smallest of these that fits the range.
NICE_WINDOWS_MS = [
    *(n * SECOND for n in (1, 2, 5, 10, 15, 30)),
    *(n * MINUTE for n in (1, 2, 5, 10, 15, 30)),
    *(n * HOUR for n in (1, 2, 3, 6, 12)),
    *(n * DAY for n in (1, 2, 7, 14, 30)),
]
# Aggregations for which a min/max band around the line means something.
BANDED = {"mean", "min", "max"}


def window_for(start: int, end: int, max_points: int, at_least: int = 0) -> int:
    """The smallest nice window (>= ``at_least``) that splits [start, end) into at most ``max_points`` buckets.

    Windows are aligned to the epoch, so a range may touch one bucket more than its length
    divided by the window: the window must fit ``max_points - 1`` times into the range.
    """
    span = max(end - start, 1)
    needed = max(math.ceil(span / max(max_points - 1, 1)), at_least, 1)
    for window in NICE_WINDOWS_MS:
        if window >= needed:
            return window
    return math.ceil(needed / DAY) * DAY


@dataclass
class Series:
    """One measurement of one device as columns: bucket starts, values, and min/max/count per bucket."""

    device: int
    measurement: str
    ts: list[int] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)
    min: list[float | None] = field(default_factory=list)
    max: list[float | None] = field(default_factory=list)
    count: list[int] = field(default_factory=list)

    def as_json(self) -> dict:
        body = {"device": self.device, "measurement": self.measurement, "ts": self.ts, "value": self.value}
        if self.min:
            body.update({"min": self.min, "max": self.max})
        body["count"] = self.count
        return body


def device_series(
    device_id: int,
    measurements: Sequence[str],
    *,
    start: int,
    end: int,
    aggregation: str = "mean",
    window_ms: int | None = None,
    max_points: int | None = None,
) -> tuple[int, list[Series]]:
    """The window used and one Series per measurement of one device, oldest bucket first."""
    limit = max_points or settings.CHART_MAX_POINTS
    window = window_for(start, end, limit, at_least=window_ms or 0)
    backend = get_backend()
    fields = list(dict.fromkeys(measurements))

    # One read of the backend's partials gives the value and its band together.
    found = backend.aggregate_band(device_id, fields, start=start, end=end, window_ms=window, function=aggregation)
    result = []
    for name in fields:
        series = Series(device_id, name)
        bands = found.get(name, [])
        series.ts = [b.ts for b in bands]
        series.value = [b.value for b in bands]
        series.count = [b.count for b in bands]
        if aggregation in BANDED:
            series.min = [b.minimum for b in bands]
            series.max = [b.maximum for b in bands]
        result.append(series)
    return window, result


def latest_values(device_id: int, measurements: Sequence[str]) -> dict[str, dict]:
    """The newest value of each measurement as ``{name: {"value", "ts"}}`` (for gauges and stats)."""
    points = get_backend().latest(device_id, list(measurements) or None)
    return {name: {"value": p.value, "ts": p.ts} for name, p in points.items()}


def measurements_of(device_id: int) -> list[str]:
    """The measurements a device has reported, by name."""
    return sorted(get_backend().latest(device_id))


def chart_payload(
    devices: Sequence, measurements: Sequence[str], *, start: int, end: int, aggregation: str, window_ms: int = 0
) -> dict:
    """What a chart draws: one downsampled series per device and measurement, with its latest value."""
    body: dict = {"start": start, "end": end, "aggregation": aggregation, "series": []}
    window = window_for(start, end, settings.CHART_MAX_POINTS, at_least=window_ms)
    for device in devices:
        window, found = device_series(
            device.pk, measurements, start=start, end=end, aggregation=aggregation, window_ms=window_ms
        )
        latest = latest_values(device.pk, measurements)
        for series in found:
            entry = series.as_json()
            entry["device_name"] = device.name
            entry["label"] = f"{device.name} · {series.measurement}" if len(devices) > 1 else series.measurement
            entry["latest"] = latest.get(series.measurement)
            body["series"].append(entry)
    body["window_ms"] = window
    return body


def chart_range(chart) -> TimeRange:
    if chart.time_range:
        return TimeRange.last(chart.time_range)
    return TimeRange.between(chart.start_at, chart.end_at)


def chart_body(chart) -> dict:
    """A saved chart's data: its series over its range, drawn only from devices its owner may still see."""
    span = chart_range(chart)
    devices = list(chart.devices.filter(pk__in=devices_visible_to(chart.dashboard.owner)).order_by("name"))
    window = parse_duration(chart.window) if chart.window else 0
    body = chart_payload(
        devices, chart.measurements, start=span.start, end=span.end, aggregation=chart.aggregation, window_ms=window
    )
    body.update({"chart": chart.pk, "type": chart.chart_type, "relative": span.relative})
    return body
