"""Telemetry backends, picked by the ``TELEMETRY_BACKEND`` setting like Django's cache backends."""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import BackendUnavailable, TelemetryBackend

__all__ = ["BackendUnavailable", "TelemetryBackend", "get_backend"]


@cache
def _backend(name: str) -> TelemetryBackend:
    if name == "sql":
        from .sql import SQLBackend

        return SQLBackend()
    raise ImproperlyConfigured(f"Unknown TELEMETRY_BACKEND {name!r}; use 'sql'.")


def get_backend() -> TelemetryBackend:
    return _backend(settings.TELEMETRY_BACKEND)
