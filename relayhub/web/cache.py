"""One Redis connection pool per process for Django's cache, and a cheap counter.

Django builds a cache backend per request context and ``RedisCache`` gives
each its own pool, so every request that touches the cache (the operator
throttle does on each one) would open a fresh TCP connection to Redis.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from redis import ConnectionPool

_pools: dict[tuple[str, tuple], ConnectionPool] = {}
_lock = threading.Lock()


class SharedConnectionPool(ConnectionPool):
    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> ConnectionPool:
        key = (url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = super().from_url(url, **kwargs)
            return pool


_COUNT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n"
_counters: dict[str, Any] = {}


def count(key: str, ttl: int) -> int:
    """Add one to a counter that lives ``ttl`` seconds from its first use, and return it.

    On Redis this is one command (a script); Django's ``cache.incr`` takes two round trips there.
    The key gets the cache's ``KEY_PREFIX`` either way.
    """
    url = settings.REDIS_URL
    if url:
        counter = _counters.get(url)
        if counter is None:
            client = redis.Redis(connection_pool=SharedConnectionPool.from_url(url))
            counter = _counters[url] = client.register_script(_COUNT)
        return counter(keys=[cache.make_key(key)], args=[ttl])
    try:
        return cache.incr(key)
    except ValueError:
        return 1 if cache.add(key, 1, ttl) else cache.incr(key)
