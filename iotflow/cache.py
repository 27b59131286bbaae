"""Django's Redis cache, made to degrade instead of failing when Redis is unreachable.

Everything IoTFlow keeps in the cache (key lookups, last-seen gates, rate-limit counters,
reported-state shortcuts) can be rebuilt from the database, so a Redis outage must cost
speed, never a request: while Redis does not answer, reads are misses, writes are dropped
and ``add`` succeeds (the key was not there), as right after a cache flush.
"""

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from prometheus_client import Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

CACHE_ERRORS = Counter("iotflow_cache_errors_total", "Cache calls answered as misses because Redis was unreachable.")
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
LOG_EVERY_SECONDS = 10.0
_last_logged = [0.0]


def _unreachable(operation: str, exc: Exception) -> None:
    CACHE_ERRORS.inc()
    now = time.monotonic()
    if now - _last_logged[0] >= LOG_EVERY_SECONDS:
        _last_logged[0] = now
        log.warning("Cache unreachable (%s: %r); treating calls as misses", operation, exc)


def degrade(method: Callable, outcome: Callable[..., Any]) -> Callable:
    """``method``, answering ``outcome(*args, **kwargs)`` when Redis cannot be reached."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OUTAGE_ERRORS as exc:
            _unreachable(method.__name__, exc)
            return outcome(*args, **kwargs)

    return call


def _missing_key(key, *args, **kwargs):
    raise ValueError(f"Key {key!r} not found (cache unreachable).")


class ReusingRedisCacheClient(RedisCacheClient):
    """Django's client, keeping one ``redis.Redis`` per connection pool instead of building one per call.

    Building a ``redis.Redis`` copies its table of response callbacks (~0.5 ms of CPU); Django does it
    on every cache call, which made the client the largest cost of a device request. A ``redis.Redis``
    is safe to share between threads (each command takes a connection from the pool).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class TolerantRedisCache(RedisCache):
    """A RedisCache whose calls behave like misses while Redis is unreachable."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    get = degrade(RedisCache.get, lambda key, default=None, version=None: default)
    get_many = degrade(RedisCache.get_many, lambda *a, **k: {})
    has_key = degrade(RedisCache.has_key, lambda *a, **k: False)
    add = degrade(RedisCache.add, lambda *a, **k: True)
    set = degrade(RedisCache.set, lambda *a, **k: None)
    set_many = degrade(RedisCache.set_many, lambda data, *a, **k: list(data))
    touch = degrade(RedisCache.touch, lambda *a, **k: False)
    delete = degrade(RedisCache.delete, lambda *a, **k: False)
    delete_many = degrade(RedisCache.delete_many, lambda *a, **k: None)
    incr = degrade(RedisCache.incr, _missing_key)
    clear = degrade(RedisCache.clear, lambda *a, **k: False)
