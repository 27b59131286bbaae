"""Rate limits of the v1 device API, kept in the shared cache and switchable off."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str | None) -> tuple[int | None, int | None]:
    """Parse ``"100/1m"``, ``"10/5m"``, ``"30/min"`` or ``"5/s"`` into (requests, seconds)."""
    if not rate:
        return None, None
    count, period = rate.split("/")
    period = period.strip().lower()
    digits = "".join(ch for ch in period if ch.isdigit())
    unit = period[len(digits) :][:1]
    return int(count), int(digits or 1) * UNITS[unit]


class RateThrottle(SimpleRateThrottle):
    def parse_rate(self, rate):
        return parse_rate(rate)

    def allow_request(self, request, view) -> bool:
        if not settings.RATE_LIMITS_ENABLED:
            return True
        return super().allow_request(request, view)


class RegistrationThrottle(RateThrottle):
    """Per client IP."""

    scope = "register"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class DeviceThrottle(RateThrottle):
    """Per device; requests not made by a device are not limited by it."""

    def get_cache_key(self, request, view) -> str | None:
        from devices.models import Device

        device = getattr(request, "auth", None)
        if not isinstance(device, Device):
            return None
        return self.cache_format % {"scope": self.scope, "ident": device.pk}


class TelemetryThrottle(DeviceThrottle):
    scope = "telemetry"


class HeartbeatThrottle(DeviceThrottle):
    scope = "heartbeat"
