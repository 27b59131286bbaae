"""The contract every telemetry backend fulfils; the same tests run against each."""

from abc import ABC, abstractmethod
from collections.abc import Sequence

from telemetry.points import Bucket, Point
from telemetry.rollups import Band, Part


class BackendUnavailable(Exception):
    """The store cannot be reached; nothing of the failed call was written."""


class TelemetryBackend(ABC):
    name: str

    @abstractmethod
    def write(self, points: Sequence[Point]) -> None:
        """Store all points or none; a point already stored (same device, measurement, ts) is kept once."""

    @abstractmethod
    def history(
        self,
        device_id: int,
        *,
        start: int,
        end: int,
        fields: Sequence[str] | None = None,
        limit: int = 1000,
        descending: bool = True,
    ) -> list[Point]:
        """Points with start <= ts < end, newest first unless ``descending`` is False."""

    @abstractmethod
    def latest(self, device_id: int, fields: Sequence[str] | None = None) -> dict[str, Point]:
        """The newest point of each measurement."""

    @abstractmethod
    def aggregate(
        self,
        device_id: int,
        fields: Sequence[str],
        *,
        start: int,
        end: int,
        window_ms: int,
        function: str,
    ) -> dict[str, list[Bucket]]:
        """Numeric points per field grouped in windows aligned to the epoch; empty windows are left out."""

    def aggregate_band(
        self,
        device_id: int,
        fields: Sequence[str],
        *,
        start: int,
        end: int,
        window_ms: int,
        function: str,
    ) -> dict[str, list[Band]]:
        """``aggregate`` with each window's minimum and maximum beside its value (a chart's line and band).

        Same windows and values as ``aggregate(function)``, ``aggregate("min")`` and ``aggregate("max")``
        on the same data. This default makes those three calls; a backend whose stored partials carry
        count, minimum, maximum and sum reads them once instead (both built-in backends do).
        """

        def run(name: str) -> dict[str, list[Bucket]]:
            return self.aggregate(device_id, fields, start=start, end=end, window_ms=window_ms, function=name)

        main = run(function)
        lows = main if function == "min" else run("min")
        highs = main if function == "max" else run("max")
        return {field: _bands(main.get(field, []), lows.get(field, []), highs.get(field, [])) for field in fields}

    @abstractmethod
    def delete(
        self,
        device_id: int,
        *,
        start: int | None = None,
        end: int | None = None,
        fields: Sequence[str] | None = None,
    ) -> int:
        """Delete points (all of the device's when no bound is given); returns how many."""

    @abstractmethod
    def count(self, device_id: int | None = None) -> int:
        """Points stored, for one device or all."""

    @abstractmethod
    def health(self) -> dict:
        """``{"status": "healthy"|"unhealthy", "backend": name, ...}``."""

    @abstractmethod
    def delete_device(self, device_id: int) -> None:
        """Forget every point and rollup of a deleted device."""

    @abstractmethod
    def refresh_rollups(self) -> dict:
        """Bring the 1-minute and 1-hour rollups up to date; returns what was done, for the task's log."""

    @abstractmethod
    def apply_retention(self) -> dict:
        """Delete raw points and rollups past their retention (settings or the device's own policy)."""

    @abstractmethod
    def export_rollups(self, device_id: int, tier: str, after: int | None, limit: int) -> list[Part]:
        """Up to ``limit`` rollup parts of a tier after ``after`` (epoch ms), oldest first, for migration."""

    @abstractmethod
    def import_rollups(self, device_id: int, tier: str, parts: Sequence[Part]) -> None:
        """Store rollup parts exported from another backend; importing the same parts twice keeps them once."""


def _bands(main: Sequence[Bucket], lows: Sequence[Bucket], highs: Sequence[Bucket]) -> list[Band]:
    """Buckets of three aggregations of the same windows side by side (None where a write between them added one)."""
    low = {b.ts: b.value for b in lows}
    high = {b.ts: b.value for b in highs}
    return [Band(b.ts, b.value, low.get(b.ts), high.get(b.ts), b.count) for b in main]
