"""Wake-ups for relays waiting in a long-poll, keyed by machine id.

Within one process a queued command wakes its waiters at once. Across
processes the long-poll falls back to polling the database; the Redis and
Postgres fan-out of the scaled-out mode plugs in here.
"""

from __future__ import annotations

import threading
from collections import defaultdict


class LocalNotifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, set[threading.Event]] = defaultdict(set)

    def publish(self, machine_id: str) -> None:
        with self._lock:
            waiters = list(self._events.get(machine_id, ()))
        for event in waiters:
            event.set()

    def subscribe(self, machine_id: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events[machine_id].add(event)
        return event

    def unsubscribe(self, machine_id: str, event: threading.Event) -> None:
        with self._lock:
            waiters = self._events.get(machine_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._events[machine_id]


notifier = LocalNotifier()


def publish(machine_id: str) -> None:
    notifier.publish(machine_id)
