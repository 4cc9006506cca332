"""Carry notifier publishes between processes: Redis pub/sub or Postgres NOTIFY.

Each process publishes to the broker and runs at most one listener thread,
started the first time something in the process waits, that republishes
locally. A message from the process itself is skipped: it was delivered
locally already.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import connection

from commands.notify import LocalNotifier

logger = logging.getLogger(__name__)
CHANNEL = "relayhub_notify"
ORIGIN = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _encode(topic: str) -> str:
    return f"{ORIGIN}|{topic}"


def _decode(message: str) -> tuple[str, str]:
    origin, _, topic = message.partition("|")
    return origin, topic


class Fanout:
    name = ""

    def __init__(self, notifier: LocalNotifier) -> None:
        self.notifier = notifier
        self._started = False
        self._stopped = False
        self._lock = threading.Lock()
        self._closing: Callable[[], None] | None = None

    def broadcast(self, topic: str) -> None:
        raise NotImplementedError

    def broadcast_many(self, topics: list[str]) -> None:
        for topic in topics:
            self.broadcast(topic)

    def messages(self, on_subscribed: Callable[[], None]) -> Iterator[str]:
        raise NotImplementedError

    def ensure_listening(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        ready = threading.Event()
        threading.Thread(target=self._listen_forever, args=(ready,), name=f"{self.name}-listener",
                         daemon=True).start()
        ready.wait(5)

    def stop(self) -> None:
        """Close the listener (tests do, before they drop their database)."""
        self._stopped = True
        if self._closing is not None:
            try:
                self._closing()
            except Exception as exc:  # noqa: BLE001 - the listener thread may be closing it at this very moment
                logger.debug("%s listener was closing already (%s)", self.name, type(exc).__name__)

    def _listen_forever(self, ready: threading.Event) -> None:
        delay = 0.5

        def subscribed() -> None:
            if ready.is_set():
                # Back after an outage: what was published meanwhile is lost, so every waiter looks again.
                self.notifier.publish_all_local()
            ready.set()

        while not self._stopped:
            try:
                for message in self.messages(subscribed):
                    origin, topic = _decode(message)
                    if origin != ORIGIN:
                        self.notifier.publish_local(topic)
                    delay = 0.5
            except Exception as exc:  # noqa: BLE001 - the listener must outlive broker outages
                if self._stopped:
                    return
                logger.warning("%s listener lost its connection (%s); retrying in %.1fs",
                               self.name, type(exc).__name__, delay)
            # Anything published while disconnected is lost: have every waiter look again.
            self.notifier.publish_all_local()
            time.sleep(delay)
            delay = min(delay * 2, 10)


class RedisFanout(Fanout):
    name = "redis"

    def __init__(self, notifier: LocalNotifier, url: str) -> None:
        super().__init__(notifier)
        import redis

        self._redis = redis
        self._url = url
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def broadcast(self, topic: str) -> None:
        try:
            self._client.publish(CHANNEL, _encode(topic))
        except self._redis.RedisError as exc:
            logger.warning("could not publish a wake-up to redis: %s", type(exc).__name__)

    def broadcast_many(self, topics: list[str]) -> None:
        if len(topics) == 1:
            self.broadcast(topics[0])
            return
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for topic in topics:
                    pipe.publish(CHANNEL, _encode(topic))
                pipe.execute()
        except self._redis.RedisError as exc:
            logger.warning("could not publish a wake-up to redis: %s", type(exc).__name__)

    def messages(self, on_subscribed: Callable[[], None]) -> Iterator[str]:
        client = self._redis.Redis.from_url(self._url, socket_connect_timeout=5, health_check_interval=30)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._closing = pubsub.close
        try:
            pubsub.subscribe(CHANNEL)
            on_subscribed()
            for message in pubsub.listen():
                if message.get("type") == "message":
                    yield message["data"].decode()
        finally:
            pubsub.close()
            client.close()


class PostgresFanout(Fanout):
    name = "postgres"

    def broadcast(self, topic: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, _encode(topic)])

    def broadcast_many(self, topics: list[str]) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload",
                           [CHANNEL, [_encode(topic) for topic in topics]])

    def messages(self, on_subscribed: Callable[[], None]) -> Iterator[str]:
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as listener:
            self._closing = listener.close
            listener.execute(f"LISTEN {CHANNEL}")
            on_subscribed()
            for notice in listener.notifies():
                yield notice.payload


def configure(notifier: LocalNotifier) -> Fanout | None:
    """Pick the broker from settings: Redis if REDIS_URL is set, else Postgres NOTIFY, else none."""
    choice = settings.RELAYHUB["NOTIFY_BACKEND"]
    if choice == "auto":
        if settings.REDIS_URL:
            choice = "redis"
        elif connection.vendor == "postgresql":
            choice = "postgres"
        else:
            choice = "local"
    if choice == "redis":
        fanout: Fanout = RedisFanout(notifier, settings.REDIS_URL)
    elif choice == "postgres":
        fanout = PostgresFanout(notifier)
    else:
        return None
    notifier.broadcast = fanout.broadcast
    notifier.on_first_wait = fanout.ensure_listening
    notifier.fanout = fanout
    return fanout
