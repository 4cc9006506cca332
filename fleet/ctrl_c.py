"""relay_exec's Ctrl-C: the first cancels, a second detaches, and neither ever shows a traceback.

One SIGINT handler owns the whole run, so there is no moment between two handlers, or between an
``except`` and the ``try`` that follows it, where an interrupt finds nobody to take it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.db import connections


class CtrlC:
    """The first Ctrl-C is raised as KeyboardInterrupt; a second only once ``cancelling`` has written what the
    first cancels; any further one is ignored. While ``held``, interrupts are counted and raised on the way out."""

    def __init__(self) -> None:
        self.count = 0
        self.raised = 0
        self.holding = False
        self.detach_ready = False
        self.previous = None

    def __enter__(self) -> CtrlC:
        self.previous = signal.signal(signal.SIGINT, self)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self.previous)

    def __call__(self, signum, frame) -> None:
        self.count += 1
        if not self.holding:
            self.raise_due()

    def raise_due(self) -> None:
        if self.count > self.raised and (self.raised == 0 or self.raised == 1 and self.detach_ready):
            self.raised += 1
            raise KeyboardInterrupt

    @contextmanager
    def held(self) -> Iterator[None]:
        """Ctrl-C inside is raised only on the way out, once the work inside is whole."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        self.raise_due()

    @contextmanager
    def cancelling(self) -> Iterator[None]:
        """Held, on a fresh database connection (the first interrupt may have broken a query half-way). Once the
        cancellation inside is written, a second Ctrl-C (one that came meanwhile too) is raised: it detaches."""
        with self.held():
            with suppress(Exception):
                connections.close_all()
            yield
            self.detach_ready = True
