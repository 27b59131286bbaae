"""The array literals the SQL backend writes a batch with: the fast paths mean what encoding each value means."""

import pytest
from django.db import connection

from telemetry.backends.sql import _columns, _numbers, _texts, encode
from telemetry.points import Point

NUMBERS = [0, 7, -3, 2**53 + 1, 2**63 - 1, -(2**63), 21.5, 0.1, -0.0, 1e300, 5e-324, 20.0]


def general_columns(points: list[Point]) -> tuple[str, str, str]:
    """types, floats and texts as ``encode`` gives them value by value."""
    types, floats, texts = zip(*(encode(p.value) for p in points), strict=True)
    return _numbers(types), _numbers(floats), _texts(texts)


@pytest.mark.parametrize(
    "values", [NUMBERS, [v for v in NUMBERS if isinstance(v, int)], [v for v in NUMBERS if isinstance(v, float)]]
)
def test_plain_numbers_are_the_float8_values_encode_gives(db, values):
    if connection.vendor != "postgresql":
        pytest.skip("array literals are PostgreSQL's; SQLite gets one row per value")
    points = [Point(1, f"m{index}", 0, value) for index, value in enumerate(values)]
    types, floats, texts = _columns(points)[3:]
    expected_types, expected_floats, expected_texts = general_columns(points)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::smallint[] = %s::smallint[], %s::float8[], %s::float8[], "
            "%s::text[] IS NOT DISTINCT FROM %s::text[]",
            [types, expected_types, floats, expected_floats, texts, expected_texts],
        )
        same_types, stored, expected, same_texts = cursor.fetchone()
    assert same_types and same_texts
    assert stored == expected == [float(value) for value in values]
    assert [str(x) for x in stored] == [str(float(value)) for value in values], "-0.0 stays negative"
