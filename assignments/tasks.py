"""Sweeps of relay liveness and history; each is idempotent and bounded by SWEEP_BATCH."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from assignments.models import ConnectionEvent, MetricSample, RelayEvent, RelayStatus
from assignments.signals import lost_relays_swept


@shared_task
def mark_lost_relays() -> int:
    """Write ``heartbeat_lost`` once per loss; receivers of ``lost_relays_swept`` release what lost relays held."""
    config, now = settings.RELAYHUB, timezone.now()
    threshold = config["ONLINE_THRESHOLD_S"]
    cutoff = now - timedelta(seconds=threshold)
    changed = 0
    silent = RelayStatus.objects.filter(
        last_connection_event=ConnectionEvent.CONNECTED, last_heartbeat_at__lt=cutoff
    )[: config["SWEEP_BATCH"]]
    for status in silent:
        changed += status.record_event(
            ConnectionEvent.HEARTBEAT_LOST, now, f"no sign of life for {threshold} s", silent_since=cutoff
        )
    return changed + sum(count for _, count in lost_relays_swept.send(sender=RelayStatus, now=now))


@shared_task
def prune_relay_history() -> int:
    config, now = settings.RELAYHUB, timezone.now()
    limit = config["SWEEP_BATCH"] * 10
    removed = 0
    for model, days in ((RelayEvent, config["EVENT_RETENTION_DAYS"]), (MetricSample, config["METRIC_RETENTION_DAYS"])):
        ids = list(model.objects.filter(created_at__lt=now - timedelta(days=days)).values_list("pk", flat=True)[:limit])
        removed += model.objects.filter(pk__in=ids).delete()[0]
    return removed
