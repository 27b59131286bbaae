"""The unit of telemetry every backend stores: one value of one measurement at one time."""

from dataclasses import dataclass
from typing import NamedTuple

Value = float | int | bool | str


class Point(NamedTuple):
    """Immutable; a named tuple rather than a frozen dataclass, whose ``__init__`` sets each field through
    ``object.__setattr__``: building points is the busiest step of validating telemetry (docs/performance.md)."""

    device_id: int
    measurement: str
    ts: int  # epoch milliseconds, UTC
    value: Value


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time window of an aggregation: its start, the aggregated value and how many points fed it."""

    ts: int
    value: float | None
    count: int


AGGREGATIONS = ("mean", "min", "max", "sum", "count")
