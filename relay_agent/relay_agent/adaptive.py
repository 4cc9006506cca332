"""The default slot count adapts to the load: more slots while short commands queue, back to the floor when idle.

An agent started with `--concurrency N` keeps N slots. Without it, it starts at
the floor and doubles its slots each time a claim fills every free slot (more are
probably waiting) while the commands it ran lately were short, up to the ceiling.
Long commands never grow it: many slow commands at once are a load the operator
should choose. A long-poll that comes back empty (nothing queued) returns it to
the floor.
"""

from __future__ import annotations

import threading
from collections import deque

from .slots import Slots

FLOOR = 4
CEILING = 32
# A command that takes longer than this is not "short": it does not earn more slots.
SHORT_MS = 1000
_RECENT = 32


class AdaptiveSlots:
    def __init__(self, slots: Slots, floor: int = FLOOR, ceiling: int = CEILING) -> None:
        self.slots = slots
        self.floor = floor
        self.ceiling = max(floor, ceiling)
        self._durations: deque[int] = deque(maxlen=_RECENT)
        self._lock = threading.Lock()
        slots.resize(floor)

    def finished(self, duration_ms: int | None) -> None:
        if duration_ms is not None:
            with self._lock:
                self._durations.append(duration_ms)

    def claimed(self, asked: int, got: int) -> None:
        """After a claim: grow on a full answer of short commands, shrink on an empty one or on long commands."""
        if got == 0:
            self.slots.resize(self.floor)
            return
        short = self._recent_short()
        if short is False:
            self.slots.resize(max(self.floor, self.slots.size // 2))
        elif got >= asked and short:
            self.slots.resize(min(self.ceiling, self.slots.size * 2))

    def _recent_short(self) -> bool | None:
        with self._lock:
            if not self._durations:
                return None
            ordered = sorted(self._durations)  # the median, without loading `statistics` (decimal, fractions)
            return ordered[len(ordered) // 2] <= SHORT_MS
