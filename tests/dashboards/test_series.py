"""Server-side downsampling: any range becomes at most CHART_MAX_POINTS buckets per series."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboards.series import NICE_WINDOWS_MS, device_series, window_for
from telemetry.backends import get_backend
from telemetry.timeparse import UNIT_MS

MINUTE, HOUR, DAY = UNIT_MS["m"], UNIT_MS["h"], UNIT_MS["d"]


@pytest.mark.parametrize("span", [MINUTE, HOUR, 24 * HOUR, 7 * DAY, 30 * DAY, 365 * DAY, 5 * 365 * DAY])
@pytest.mark.parametrize("max_points", [10, 100, 600])
def test_window_fits_the_range_into_the_limit_wherever_it_starts(span, max_points):
    for start in (0, 1, 12_345_678, 1_750_000_000_123):
        window = window_for(start, start + span, max_points)
        first, last = start // window, (start + span - 1) // window
        assert last - first + 1 <= max_points, (span, max_points, start, window)


def test_window_is_the_smallest_nice_one_that_fits():
    assert window_for(0, HOUR, 600) == 10_000  # 3600 s / 599 → 6.01 s → 10 s
    assert window_for(0, 30 * DAY, 600) == 2 * HOUR
    assert window_for(0, HOUR, 600, at_least=5 * MINUTE) == 5 * MINUTE, "a chosen window is a minimum"
    assert window_for(0, 30 * DAY, 600, at_least=MINUTE) == 2 * HOUR, "but never so small it breaks the limit"
    assert all(a < b for a, b in zip(NICE_WINDOWS_MS, NICE_WINDOWS_MS[1:], strict=False))


def test_thirty_days_of_minutely_data_keeps_spikes_within_the_limit(device, write_points, settings):
    settings.CHART_MAX_POINTS = 200
    start = 1_750_000_000_000 - 1_750_000_000_000 % DAY
    samples = [(start + i * MINUTE, 10.0) for i in range(30 * 24 * 60)]
    spike_at = start + 12 * DAY + 7 * MINUTE
    samples[12 * 24 * 60 + 7] = (spike_at, 99.0)
    samples[20 * 24 * 60] = (samples[20 * 24 * 60][0], -5.0)
    write_points(device.pk, "temperature", samples)

    window, (series,) = device_series(device.pk, ["temperature"], start=start, end=start + 30 * DAY)

    assert len(series.ts) <= 200
    assert window == 6 * HOUR
    assert max(series.max) == 99.0 and min(series.min) == -5.0, "the band keeps the extremes"
    spike_bucket = series.ts.index(spike_at - spike_at % window)
    assert series.value[spike_bucket] < 20, "the mean alone would hide the spike"
    assert sum(series.count) == len(samples)


def test_sum_and_count_have_no_band_and_unknown_measurements_are_empty(device, write_points):
    write_points(device.pk, "energy", [(i * 1000, 2) for i in range(1, 11)])
    window, (energy, missing) = device_series(
        device.pk, ["energy", "nothing"], start=0, end=20_000, aggregation="sum", window_ms=5000
    )
    assert window == 5000
    assert energy.ts == [0, 5000, 10000] and energy.value == [8.0, 10.0, 2.0]
    assert energy.as_json().get("min") is None
    assert missing.ts == [] and missing.value == []


@pytest.mark.parametrize("aggregation", ["mean", "min", "max", "sum"])
def test_value_and_band_cost_one_read_of_the_backend(device, write_points, aggregation):
    """A banded series reads the rollups and raw edges once, as one ``aggregate()`` of the same range does."""
    start = 1_750_000_000_000 - 1_750_000_000_000 % DAY
    write_points(device.pk, "temperature", [(start + i * 7_000, float(i % 50)) for i in range(3 * 60 * 60 // 7)])
    get_backend().refresh_rollups()
    end = start + 3 * HOUR - 13_000  # the last minutes are read from raw points
    window, _ = device_series(
        device.pk, ["temperature"], start=start + 29_000, end=end, aggregation=aggregation, max_points=30
    )
    assert window == 10 * MINUTE, "whole minutes: 1-minute rollups answer, raw points the edges"

    with CaptureQueriesContext(connection) as one_aggregate:
        get_backend().aggregate(
            device.pk, ["temperature"], start=start + 29_000, end=end, window_ms=window, function=aggregation
        )
    with CaptureQueriesContext(connection) as chart:
        _, (series,) = device_series(
            device.pk, ["temperature"], start=start + 29_000, end=end, aggregation=aggregation, max_points=30
        )

    assert len(chart) == len(one_aggregate), [q["sql"] for q in chart.captured_queries]
    assert len(series.ts) == len(series.value) == len(series.count) > 0
    if aggregation != "sum":
        assert all(lo <= v <= hi for lo, v, hi in zip(series.min, series.value, series.max, strict=True))
