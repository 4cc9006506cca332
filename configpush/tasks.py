from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from configpush.models import ConfigPush, PushStatus


@shared_task
def requeue_unacked_pushes() -> int:
    """A push left ``sent`` too long goes back to ``pending``; after PUSH_MAX_TRIES it fails."""
    config = settings.RELAYHUB
    cutoff = timezone.now() - timedelta(seconds=config["PUSH_ACK_TIMEOUT_S"])
    stale = ConfigPush.objects.filter(status=PushStatus.SENT, sent_at__lt=cutoff).order_by("sent_at")
    return sum(push.requeue_or_fail(config["PUSH_MAX_TRIES"]) for push in stale[: config["SWEEP_BATCH"]])
