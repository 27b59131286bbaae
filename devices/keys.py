"""Device API-key lookups, cached so a device request costs no query for its key.

Two levels: each process keeps the lookups it made in memory, and Redis (the default cache)
shares them between processes. A changed or deleted device drops its entries from both at
once: the Redis entry is deleted and the key hashes are published on ``CHANNEL``, which
every process follows with one subscriber thread. A process trusts its memory only while
that subscription is live; while Redis is away (or there is none) it asks the shared cache
and the database as before, so a rotated key is refused everywhere as soon as it is saved.
"""

import copy
import logging
import threading
import time

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from accounts.models import hash_secret
from iotflow.per_process import PerProcess

from .models import Device

log = logging.getLogger(__name__)

CHANNEL = "iotflow:device-keys:forget"
MAX_LOCAL_ENTRIES = 100_000
RECONNECT_SECONDS = 1.0


def cache_key(key_hash: str) -> str:
    return f"device-key:{key_hash}"


def device_for_key(raw_key: str) -> Device | None:
    """The device holding this API key, or None. Cached for API_KEY_CACHE_SECONDS.

    The device is the caller's own copy: requests never share one instance.
    """
    key_hash = hash_secret(raw_key)
    local = local_keys()
    if local is None:
        found = _shared_lookup(key_hash)
    elif (found := local.get(key_hash)) is None:
        generation = local.generation
        found = _shared_lookup(key_hash)
        local.put(key_hash, found, generation)
    return copy.copy(found) if found else None


def _shared_lookup(key_hash: str) -> Device | bool:
    cached = cache.get(cache_key(key_hash))
    if cached is not None:
        return cached
    device = Device.objects.filter(api_key_hash=key_hash).first()
    # A miss is cached too (as False) so guessing keys costs the database nothing.
    cache.set(cache_key(key_hash), device or False, settings.API_KEY_CACHE_SECONDS)
    return device or False


def forget_key_hashes(*key_hashes: str) -> None:
    """Drop cached lookups at once, so a rotated key or changed status takes effect immediately.

    Again when the transaction commits: a lookup made in between may have read the row as it was.
    """
    hashes = sorted({h for h in key_hashes if h})
    if not hashes:
        return
    _forget(hashes)
    transaction.on_commit(lambda: _forget(hashes), robust=True)


def _forget(hashes: list[str]) -> None:
    cache.delete_many([cache_key(h) for h in hashes])
    local = local_keys()
    if local is not None:
        local.forget(hashes)
    if settings.REDIS_URL:
        try:
            _publishers.get().publish(CHANNEL, " ".join(hashes))
        except (redis.RedisError, OSError):
            # Nobody can be subscribed without Redis: every process already bypasses its memory.
            log.warning("Could not publish a device key change", exc_info=True)


class LocalKeys:
    """This process's key lookups, used only while the subscription to key changes is live."""

    def __init__(self, url: str, seconds: float):
        self.url = url
        self.seconds = seconds
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[float, Device | bool]] = {}
        self.live = False
        self.generation = 0  # bumped by every change and subscription event
        self.subscribed = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._follow, name="device-keys", daemon=True)
        self.thread.start()

    def get(self, key_hash: str) -> Device | bool | None:
        with self.lock:
            if not self.live:
                return None
            hit = self.entries.get(key_hash)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key_hash: str, found: Device | bool, generation: int) -> None:
        """Keep a lookup made while at ``generation``, unless a change arrived since (it may be older)."""
        with self.lock:
            if not self.live or generation != self.generation:
                return
            if len(self.entries) >= MAX_LOCAL_ENTRIES:
                self.entries.clear()
            self.entries[key_hash] = (time.monotonic() + self.seconds, found)

    def forget(self, hashes: list[str]) -> None:
        with self.lock:
            self.generation += 1
            for key_hash in hashes:
                self.entries.pop(key_hash, None)

    def _set_live(self, live: bool) -> None:
        with self.lock:
            self.generation += 1
            self.entries.clear()  # whatever was missed while not subscribed is forgotten with it
            self.live = live

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)

    def _follow(self) -> None:
        while not self.stopping.is_set():
            client = redis.Redis.from_url(
                self.url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=2
            )
            pubsub = client.pubsub(ignore_subscribe_messages=False)
            try:
                pubsub.subscribe(CHANNEL)
                while not self.stopping.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        pubsub.check_health()
                        continue
                    if message["type"] == "subscribe":
                        self._set_live(True)
                        self.subscribed.set()
                    elif message["type"] == "message":
                        self.forget(message["data"].decode().split())
            except Exception:  # Redis is away: stop trusting memory until subscribed again
                self._set_live(False)
                self.subscribed.clear()
                log.debug("Device key subscription lost; retrying", exc_info=True)
            finally:
                pubsub.close()
                client.close()
            self.stopping.wait(RECONNECT_SECONDS)
        self._set_live(False)


def _let_go(previous: LocalKeys) -> None:
    if previous.thread.ident is not None:
        previous.stopping.set()  # another Redis (settings changed): its thread ends on its own


_local = PerProcess(
    lambda: LocalKeys(settings.REDIS_URL, settings.API_KEY_CACHE_SECONDS),
    key=lambda: settings.REDIS_URL,
    replaced=_let_go,
)
_publishers = PerProcess(
    lambda: redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1),
    key=lambda: settings.REDIS_URL,
)


def local_keys() -> LocalKeys | None:
    """This process's in-memory lookups (started on first use, again in a forked child); None without Redis."""
    if not settings.REDIS_URL or not settings.API_KEY_CACHE_SECONDS:
        return None
    return _local.get()
