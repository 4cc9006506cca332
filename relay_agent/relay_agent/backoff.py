"""Exponential backoff with jitter, so a fleet of relays does not retry an ailing hub in lockstep."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(self, base: float = 0.5, cap: float = 30.0, rand: Callable[[], float] = random.random) -> None:
        self.base = base
        self.cap = cap
        self._rand = rand
        self.failures = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 32))
        self.failures += 1
        return ceiling / 2 + self._rand() * ceiling / 2

    def reset(self) -> None:
        self.failures = 0
