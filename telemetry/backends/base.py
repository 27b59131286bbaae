"""The contract every telemetry backend fulfils; the same tests run against each."""

from abc import ABC, abstractmethod
from collections.abc import Sequence

from telemetry.points import Bucket, Point
from telemetry.rollups import Part


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
