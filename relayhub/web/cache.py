"""One Redis connection pool per process for Django's cache, and a cheap counter.

Django builds a cache backend per request context and ``RedisCache`` gives
each its own pool, so every request that touches the cache (the operator
throttle does on each one) would open a fresh TCP connection to Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from redis import ConnectionPool

logger = logging.getLogger(__name__)
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
    The key gets the cache's ``KEY_PREFIX`` either way. While Redis cannot be reached, this process counts
    on its own: rate limits then hold per process, and relays are served rather than answered 500.
    """
    url = settings.REDIS_URL
    if url:
        counter = _counters.get(url)
        if counter is None:
            # Timeouts: a Redis that stops answering must not hold every request that counts.
            pool = SharedConnectionPool.from_url(url, socket_timeout=REDIS_TIMEOUT_S,
                                                 socket_connect_timeout=REDIS_TIMEOUT_S)
            counter = _counters[url] = redis.Redis(connection_pool=pool).register_script(_COUNT)
        try:
            return counter(keys=[cache.make_key(key)], args=[ttl])
        except redis.RedisError as exc:
            _say_redis_is_gone(exc)
            return _local_count(key, ttl)
    try:
        return cache.incr(key)
    except ValueError:
        return 1 if cache.add(key, 1, ttl) else cache.incr(key)


REDIS_TIMEOUT_S = 1.0
_local: dict[str, tuple[float, int]] = {}  # key -> (when it ends, count), while Redis is gone
_last_warning = [0.0]


def _local_count(key: str, ttl: int) -> int:
    now = time.monotonic()
    with _lock:
        if len(_local) > 10_000:  # ended windows of many keys: drop them
            for old in [name for name, (ends, _) in _local.items() if ends <= now]:
                del _local[old]
        ends, seen = _local.get(key, (0.0, 0))
        if ends <= now:
            ends, seen = now + ttl, 0
        _local[key] = (ends, seen + 1)
        return seen + 1


def _say_redis_is_gone(exc: Exception) -> None:
    now = time.monotonic()
    if now - _last_warning[0] >= 30:
        _last_warning[0] = now
        logger.warning("rate counters: Redis unreachable (%s); counting in this process until it is back",
                       type(exc).__name__)
