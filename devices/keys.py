"""Device API-key lookups, cached so a device request costs no query for its key."""

from django.conf import settings
from django.core.cache import cache

from accounts.models import hash_secret

from .models import Device


def cache_key(key_hash: str) -> str:
    return f"device-key:{key_hash}"


def device_for_key(raw_key: str) -> Device | None:
    """The device holding this API key, or None. Cached for API_KEY_CACHE_SECONDS."""
    key_hash = hash_secret(raw_key)
    cached = cache.get(cache_key(key_hash))
    if cached is not None:
        return cached or None
    device = Device.objects.filter(api_key_hash=key_hash).first()
    # A miss is cached too (as False) so guessing keys costs the database nothing.
    cache.set(cache_key(key_hash), device or False, settings.API_KEY_CACHE_SECONDS)
    return device


def forget_key_hashes(*key_hashes: str) -> None:
    """Drop cached lookups at once, so a rotated key or changed status takes effect immediately."""
    cache.delete_many([cache_key(h) for h in key_hashes if h])
