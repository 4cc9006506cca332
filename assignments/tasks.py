"""Sweeps of relay liveness and history; each is idempotent and bounded by SWEEP_BATCH."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from assignments.models import ConnectionEvent, MetricSample, RelayEvent, RelayStatus
from commands.choices import CommandStatus
from commands.models import Command


@shared_task
def mark_lost_relays() -> int:
    """Write ``heartbeat_lost`` once per loss, and time out what the lost relays held."""
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
    active = CommandStatus.active()
    held = Command.objects.filter(
        status__in=active, claimed_by__status__last_connection_event=ConnectionEvent.HEARTBEAT_LOST
    )[: config["SWEEP_BATCH"]]
    for command in held:
        changed += command.expire(active, "relay lost")
    return changed


@shared_task
def prune_relay_history() -> int:
    config, now = settings.RELAYHUB, timezone.now()
    limit = config["SWEEP_BATCH"] * 10
    removed = 0
    for model, days in ((RelayEvent, config["EVENT_RETENTION_DAYS"]), (MetricSample, config["METRIC_RETENTION_DAYS"])):
        ids = list(model.objects.filter(created_at__lt=now - timedelta(days=days)).values_list("pk", flat=True)[:limit])
        removed += model.objects.filter(pk__in=ids).delete()[0]
    return removed
