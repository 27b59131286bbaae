"""Hours with late points of several measurements are read from their minutes until the rollup pass folds them."""

import pytest

from telemetry.backends import get_backend
from telemetry.models import RollupMarker
from telemetry.points import Point
from telemetry.rollups import HOUR_MS, MINUTE_MS

from .test_rollups import FUNCTIONS, T0, aggregate, as_tuples, raw_answer, refresh

FIELDS = ("t", "on", "h")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_late_points_in_several_hours_and_measurements_count_before_and_after_the_pass(device, function):
    backend = get_backend()
    backend.write(
        [Point(device.pk, m, T0 + i * 20_000, (i * 7 + n) % 23) for i in range(540) for n, m in enumerate(FIELDS)]
    )
    refresh()
    late = [
        Point(device.pk, "t", T0 + 5 * MINUTE_MS + 1_000, 99.0),
        Point(device.pk, "t", T0 + 50 * MINUTE_MS + 2_000, -40.0),
        Point(device.pk, "h", T0 + 50 * MINUTE_MS + 3_000, 50.0),
        Point(device.pk, "on", T0 + 2 * HOUR_MS + 59 * MINUTE_MS + 4_000, 1000.0),
    ]
    backend.write(late)
    start, end = T0, T0 + 3 * HOUR_MS

    pending = aggregate(device.pk, start, end, HOUR_MS, function, FIELDS)
    assert RollupMarker.objects.count() == 4
    refresh()
    folded = aggregate(device.pk, start, end, HOUR_MS, function, FIELDS)

    expected = as_tuples(raw_answer(device.pk, start, end, HOUR_MS, function, FIELDS))
    assert as_tuples(pending) == expected
    assert as_tuples(folded) == expected
    assert sum(b.count for b in folded["t"]) == 542
