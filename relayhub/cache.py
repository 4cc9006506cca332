"""One Redis connection pool per process for Django's cache, and a cheap counter.

Django builds a cache backend per request context and ``RedisCache`` gives
each its own pool, so every request (the relay throttle reads the cache on
each one) would open a fresh TCP connection to Redis, and every waiting
long-poll would keep one open.
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


def count(key: str, ttl: int) -> int:
    """Add one to a counter that lives ``ttl`` seconds from its first use, and return it.

    On Redis this is one round trip; Django's ``cache.incr`` takes two there.
    """
    if settings.REDIS_URL:
        client = redis.Redis(connection_pool=SharedConnectionPool.from_url(settings.REDIS_URL))
        pipe = client.pipeline(transaction=False)
        pipe.set(key, 0, ex=ttl, nx=True)
        pipe.incr(key)
        return pipe.execute()[1]
    try:
        return cache.incr(key)
    except ValueError:
        return 1 if cache.add(key, 1, ttl) else cache.incr(key)
