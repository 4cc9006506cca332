"""Wake-ups for whoever waits on a machine's queue or on a command's end.

Topics are plain strings: ``machine:<id>`` when a command is queued,
``command:<id>`` when one finishes, ``output:<id>`` when output chunks of a
running command arrive, ``batch:<id>`` when a batch dispatches copies or one of
them ends. A waiter may also listen to every topic of a kind (``command:*``).
Within a process a publish wakes waiters
at once, whether they wait in a thread (``exec()``) or on an event loop (the
long-poll). Across processes, the scaled-out mode relays publishes through a
broker (see ``commands.fanout``); without one, waiters also poll the database.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.dispatch import receiver

from assignments.signals import config_queued


class _Waiter:
    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake


class LocalNotifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[_Waiter]] = defaultdict(set)
        self.broadcast: Callable[[str], None] | None = None
        # Starts the cross-process listener the first time anything here waits.
        self.on_first_wait: Callable[[], None] | None = None
        self.fanout = None  # commands.fanout.Fanout, when a broker is configured
        # Publishes seen by this process, counted per bucket of topics: a count
        # unchanged between two moments means no wake-up for the topic came in between.
        self._counts = [0] * 1024

    def publish(self, topic: str) -> None:
        """Wake local waiters, and other processes when a broker is configured."""
        self.publish_local(topic)
        if self.broadcast is not None:
            self.broadcast(topic)

    def publish_many(self, topics: list[str]) -> None:
        """``publish`` for each topic, with one round trip to the broker for all of them."""
        for topic in topics:
            self.publish_local(topic)
        if self.broadcast is None:
            return
        if self.fanout is not None:
            self.fanout.broadcast_many(topics)
        else:
            for topic in topics:
                self.broadcast(topic)

    def publish_local(self, topic: str) -> None:
        with self._lock:
            self._counts[hash(topic) % len(self._counts)] += 1
            waiters = [*self._waiters.get(topic, ()), *self._waiters.get(_kind(topic), ())]
        for waiter in waiters:
            waiter.wake()

    def published(self, topic: str) -> int:
        """How many wake-ups for ``topic`` (or one sharing its bucket) this process has seen."""
        return self._counts[hash(topic) % len(self._counts)]

    def start_listening(self) -> None:
        if self.on_first_wait is not None:
            start, self.on_first_wait = self.on_first_wait, None
            start()

    def publish_all_local(self) -> None:
        with self._lock:
            self._counts = [count + 1 for count in self._counts]
            waiters = [waiter for group in self._waiters.values() for waiter in group]
        for waiter in waiters:
            waiter.wake()

    def _add(self, topic: str, waiter: _Waiter) -> None:
        self.start_listening()
        with self._lock:
            self._waiters[topic].add(waiter)

    def _remove(self, topic: str, waiter: _Waiter) -> None:
        with self._lock:
            waiters = self._waiters.get(topic)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[topic]

    def subscribe(self, topic: str) -> threading.Event:
        event = threading.Event()
        waiter = _Waiter(event.set)
        event._relayhub_waiter = waiter  # type: ignore[attr-defined]
        self._add(topic, waiter)
        return event

    def unsubscribe(self, topic: str, event: threading.Event) -> None:
        self._remove(topic, event._relayhub_waiter)  # type: ignore[attr-defined]

    @contextmanager
    def listen(self, *topics: str) -> Iterator[AsyncSubscription]:
        """Subscribe on the running loop to each of ``topics`` (``kind:*`` for every topic of a kind);
        publishes from any thread are kept until waited for."""
        subscription = AsyncSubscription(asyncio.get_running_loop())
        for topic in topics:
            self._add(topic, subscription.waiter)
        try:
            yield subscription
        finally:
            for topic in topics:
                self._remove(topic, subscription.waiter)


class AsyncSubscription:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._event = asyncio.Event()
        self.waiter = _Waiter(lambda: loop.call_soon_threadsafe(self._event.set))

    async def wait(self, timeout: float) -> bool:
        """True if woken (possibly by a publish that came before the call)."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._event.clear()


def _kind(topic: str) -> str:
    """The wildcard topic that also hears ``topic``: ``command:*`` for ``command:7``."""
    return topic.partition(":")[0] + ":*"


notifier = LocalNotifier()


def machine_topic(machine_id: str) -> str:
    return f"machine:{machine_id}"


def command_topic(command_id: int | str) -> str:
    return f"command:{command_id}"


def output_topic(command_id: int | str) -> str:
    return f"output:{command_id}"


def batch_topic(batch_id: int | str) -> str:
    return f"batch:{batch_id}"


def config_topic(relay_id: object) -> str:
    return f"config:{relay_id}"


@receiver(config_queued, dispatch_uid="commands.notify.config_queued")
def _wake_for_config(sender: type, relay_id: object, machine_id: str, **kwargs: object) -> None:
    # The config topic first: a long-poll woken by its machine topic then sees the config counter moved.
    publish_many([config_topic(relay_id), machine_topic(machine_id)])


def publish(topic: str) -> None:
    notifier.publish(topic)


def publish_many(topics: list[str]) -> None:
    notifier.publish_many(topics)
