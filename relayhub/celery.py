"""Celery for relayhub: the beat schedule lives in settings (CELERY_BEAT_SCHEDULE)."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relayhub.settings")

app = Celery("relayhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
_audit_origins: dict[str, object] = {}


@task_prerun.connect
def _audit_as_the_hub(task_id: str = "", task=None, **kwargs) -> None:
    """What a task writes to the audit trail comes from the hub itself (beat's schedules say more)."""
    from audit import trail
    from audit.models import Source

    _audit_origins[task_id] = trail.enter_origin(Source.SYSTEM, f"task {getattr(task, 'name', '')}")


@task_postrun.connect
def _audit_origin_done(task_id: str = "", **kwargs) -> None:
    from audit import trail

    token = _audit_origins.pop(task_id, None)
    if token is not None:
        trail.leave_origin(token)
