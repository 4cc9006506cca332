"""Each template schedule as a django-celery-beat periodic task, kept in step when the schedule is saved or deleted.

Beat (``runbooks.beat.Scheduler``, a DatabaseScheduler) reads the periodic tasks and notices a
change within its loop interval (5 s). The periodic task sends ``run_schedule`` with the
schedule's id; what runs is decided then, from the schedule as it is.
"""

from __future__ import annotations

import json
from typing import Any

from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

TASK = "runbooks.tasks.run_schedule"


def task_name(schedule: Any) -> str:
    return f"runbooks.schedule.{schedule.pk}"


def sync(schedule: Any) -> PeriodicTask:
    """Create or update the schedule's periodic task (called in the schedule's save transaction)."""
    crontab = interval = None
    if schedule.cron:
        minute, hour, day_of_month, month_of_year, day_of_week = schedule.cron.split()
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
            day_of_week=day_of_week, timezone=schedule.timezone)
    else:
        interval, _ = IntervalSchedule.objects.get_or_create(every=schedule.interval_seconds,
                                                             period=IntervalSchedule.SECONDS)
    task = schedule.periodic_task or PeriodicTask.objects.filter(name=task_name(schedule)).first() or \
        PeriodicTask(name=task_name(schedule), task=TASK)
    if task.crontab != crontab or task.interval != interval or not task.enabled:
        task.last_run_at = None  # new timing, or enabled again: counted from now, not from an old run
    task.task, task.crontab, task.interval = TASK, crontab, interval
    task.kwargs = json.dumps({"schedule_id": schedule.pk})
    task.enabled = schedule.enabled
    task.description = f"{schedule.template}: {schedule.name}"[:1000]
    task.save()
    if schedule.periodic_task_id != task.pk:
        schedule.periodic_task = task
        type(schedule).objects.filter(pk=schedule.pk).update(periodic_task=task)
    return task


def remove(schedule: Any) -> None:
    """Delete the schedule's periodic task; beat drops it at its next look."""
    for task in PeriodicTask.objects.filter(name=task_name(schedule)):
        task.delete()
