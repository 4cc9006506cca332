"""The beat scheduler: django-celery-beat's DatabaseScheduler, stamping each schedule's message with when it was sent.

``run_schedule`` works out the slot (the due time a run is for) from that stamp, not from when a
worker got round to it: a message that waited in the queue still counts for its own slot, and the
same slot sent twice (a beat restarted before it saved its last run) runs once.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from runbooks.beat_sync import TASK


class _Stamped:
    """The entry, with other keyword arguments."""

    def __init__(self, entry: Any, kwargs: dict[str, Any]) -> None:
        self._entry, self.kwargs = entry, kwargs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._entry, name)


class Scheduler(DatabaseScheduler):
    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        if advance:
            entry = self.reserve(entry)
        if entry.task == TASK:
            entry = _Stamped(entry, {**entry.kwargs, "fired_at": timezone.now().isoformat()})
        return super().apply_async(entry, producer, False, **kwargs)
