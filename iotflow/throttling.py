"""Rate limits of the v1 device API and of password logins, kept in the shared cache."""

import contextlib
import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
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


def client_address(request) -> str:
    """The client's address as DRF's throttles see it: REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES."""
    meta = getattr(request, "META", None) or {}
    remote = meta.get("REMOTE_ADDR", "")
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not settings.NUM_PROXIES or not forwarded:
        return remote
    addresses = forwarded.split(",")
    return addresses[-min(settings.NUM_PROXIES, len(addresses))].strip()


def login_failure_counters(request, username: str) -> dict[str, int]:
    """Cache keys counting failed logins, with their limits: per username and address, and per address."""
    address = client_address(request) if request is not None else ""
    user = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    counters = {f"login-failures:user:{user}:{address}": settings.LOGIN_FAILURE_LIMIT}
    if address:
        counters[f"login-failures:address:{address}"] = settings.LOGIN_ADDRESS_FAILURE_LIMIT
    return {key: limit for key, limit in counters.items() if limit}


class LoginThrottleBackend(ModelBackend):
    """Django's ModelBackend, refusing further attempts after too many failed logins.

    After LOGIN_FAILURE_LIMIT failures for one username from one address (or
    LOGIN_ADDRESS_FAILURE_LIMIT from one address, whatever the usernames) within
    LOGIN_LOCKOUT_SECONDS, every login from there is refused, right password or not,
    until the window ends. It guards every password login: the login page, the admin
    and device registration with owner credentials.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        counters = login_failure_counters(request, str(username))
        if any((cache.get(key) or 0) >= limit for key, limit in counters.items()):
            raise PermissionDenied("Too many failed logins; try again later.")  # authenticate() then stops
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            for key in counters:
                cache.add(key, 0, settings.LOGIN_LOCKOUT_SECONDS)
                with contextlib.suppress(ValueError):  # expired in between, or the cache is unreachable
                    cache.incr(key)
        else:
            cache.delete_many([key for key in counters if key.startswith("login-failures:user:")])
        return user
