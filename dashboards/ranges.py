"""Time ranges as pages ask for them (a relative range or a custom start and end) in epoch milliseconds."""

from dataclasses import dataclass
from datetime import datetime

from telemetry.timeparse import UNIT_MS, now_ms

from .models import RELATIVE_RANGES

RANGE_CHOICES = [*RELATIVE_RANGES, ("custom", "Custom range")]


def relative_ms(spec: str) -> int:
    """``15m``, ``24h``, ``7d`` → milliseconds."""
    return int(spec[:-1]) * UNIT_MS[spec[-1]]


@dataclass(frozen=True)
class TimeRange:
    start: int
    end: int
    relative: str = ""  # the relative spec it came from; empty for an absolute range

    @classmethod
    def last(cls, spec: str, now: int | None = None) -> "TimeRange":
        end = now if now is not None else now_ms()
        return cls(end - relative_ms(spec), end, spec)

    @classmethod
    def between(cls, start: datetime, end: datetime) -> "TimeRange":
        return cls(int(start.timestamp() * 1000), int(end.timestamp() * 1000))

    @property
    def span(self) -> int:
        return self.end - self.start
