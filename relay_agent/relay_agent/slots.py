"""The agent's command slots: which claimed commands hold one, how many are free, and waiting for one to free."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RunningCommand:
    command_id: str
    attempt: int | None
    cancel: threading.Event = field(default_factory=threading.Event)
    shutting_down: bool = False
    announced: bool = False  # the hub has recorded the start
    cancel_requested: bool = False  # ... and asked, in the same answer, not to run it


class Slots:
    """At most `size` commands hold a slot; releasing one wakes whoever waits for a slot or for the end."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._changed = threading.Condition()
        self._busy = 0
        self._running: dict[str, RunningCommand] = {}

    @property
    def busy(self) -> int:
        return self._busy

    def resize(self, size: int) -> None:
        """A new limit; commands above it keep their slots and simply are not replaced until under it."""
        with self._changed:
            if size != self.size:
                self.size = size
                self._changed.notify_all()

    def free(self) -> int:
        with self._changed:
            return max(0, self.size - self._busy)

    def wait_for_free(self, stopping: threading.Event) -> int:
        with self._changed:
            while self._busy >= self.size and not stopping.is_set():
                self._changed.wait(0.5)
            return max(0, self.size - self._busy)

    def holds(self, command_id: str) -> bool:
        with self._changed:
            return command_id in self._running

    def holding(self) -> list[str]:
        with self._changed:
            return list(self._running)

    def find(self, command_id: str) -> RunningCommand | None:
        with self._changed:
            return self._running.get(command_id)

    def take(self, running: RunningCommand) -> None:
        with self._changed:
            self._busy += 1
            self._running[running.command_id] = running

    def release(self, running: RunningCommand) -> None:
        with self._changed:
            self._busy -= 1
            self._running.pop(running.command_id, None)
            self._changed.notify_all()

    def wait_while(self, condition: Callable[[], bool]) -> list[RunningCommand]:
        """Wait as long as `condition()` holds, checked every 0.1 s and at each release; the commands running then."""
        with self._changed:
            while condition():
                self._changed.wait(0.1)
            return list(self._running.values())
