"""Telemetry backends, picked by the ``TELEMETRY_BACKEND`` setting like Django's cache backends."""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import BackendUnavailable, TelemetryBackend

__all__ = ["BACKENDS", "BackendUnavailable", "TelemetryBackend", "backend_named", "get_backend"]

BACKENDS = ("sql", "iotdb")


@cache
def _backend(name: str) -> TelemetryBackend:
    if name == "sql":
        from .sql import SQLBackend

        return SQLBackend()
    if name == "iotdb":
        from .iotdb import IoTDBBackend

        return IoTDBBackend()
    raise ImproperlyConfigured(f"Unknown TELEMETRY_BACKEND {name!r}; use one of {', '.join(BACKENDS)}.")


def backend_named(name: str) -> TelemetryBackend:
    """A backend by name, whatever the setting (copying telemetry between backends needs both)."""
    return _backend(name)


def get_backend() -> TelemetryBackend:
    return _backend(settings.TELEMETRY_BACKEND)
