"""Celery tasks of runbooks: a schedule's run, sent by beat alone, and the sweep of scheduled runs."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from runbooks import scheduling


# Acknowledged once done: a worker lost mid-run leaves the message to be delivered again, and the slot it
# carries runs once all the same (or, past its time to live, is reported never started).
@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_schedule(schedule_id: int, fired_at: str | None = None) -> str:
    """One run of the schedule, for the slot beat sent at ``fired_at`` (ISO 8601; the beat scheduler adds it)."""
    try:
        sent = datetime.fromisoformat(fired_at) if fired_at else None
    except (TypeError, ValueError):
        sent = None
    if sent is not None and sent.tzinfo is None:
        sent = None
    run = scheduling.fire(int(schedule_id), sent)
    return run.state if run is not None else "none"


@shared_task
def sweep_scheduled_runs() -> int:
    """Runs past their time to live that never started, then queued runs whose turn has come."""
    return scheduling.sweep()
