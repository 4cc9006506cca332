"""Sweeps of the command queue; each is idempotent and bounded by SWEEP_BATCH.

The heartbeat-lost sweep of ``assignments`` reaches the commands of lost relays
through ``lost_relays_swept``, received here.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.dispatch import receiver
from django.utils import timezone

from assignments.models import ConnectionEvent
from assignments.signals import lost_relays_swept
from commands import approvals, fetching, full_output
from commands.choices import CommandStatus
from commands.models import Command, OutputChunk


@shared_task
def expire_commands() -> int:
    """Time out commands past their deadline (plus grace) and pending ones past the queue TTL."""
    config, now = settings.RELAYHUB, timezone.now()
    batch, active = config["SWEEP_BATCH"], CommandStatus.active()
    changed = 0
    overdue = Command.objects.filter(
        status__in=active, deadline_at__lt=now - timedelta(seconds=config["TIMEOUT_GRACE_S"])
    ).order_by("deadline_at")[:batch]
    for command in overdue:
        changed += command.expire(active, "execution timed out")
    ttl = config["QUEUE_TTL_S"]
    unclaimed = Command.objects.filter(
        status=CommandStatus.PENDING, created_at__lt=now - timedelta(seconds=ttl)
    ).order_by("created_at")[:batch]
    for command in unclaimed:
        changed += command.expire({CommandStatus.PENDING}, f"not claimed within {ttl} s")
    return changed


@shared_task
def flag_relays_not_fetching() -> int:
    """Relays heard from but not fetching while commands wait for them (commands.fetching)."""
    return len(fetching.flag_not_fetching())


@shared_task
def expire_approvals() -> int:
    """Cancel the commands and batches whose approval is past its time ("approval expired after 24 h")."""
    return approvals.expire_due(settings.RELAYHUB["SWEEP_BATCH"])


@receiver(lost_relays_swept, dispatch_uid="commands.time_out_commands_of_lost_relays")
def time_out_commands_of_lost_relays(sender: type, **kwargs: object) -> int:
    """Time out what relays declared lost had claimed."""
    active = CommandStatus.active()
    held = Command.objects.filter(
        status__in=active, claimed_by__status__last_connection_event=ConnectionEvent.HEARTBEAT_LOST
    )[: settings.RELAYHUB["SWEEP_BATCH"]]
    return sum(command.expire(active, "relay lost") for command in held)


@shared_task
def prune_output() -> int:
    """Drop live-output chunks of commands that ended long ago; the final output stays on the command."""
    config = settings.RELAYHUB
    cutoff = timezone.now() - timedelta(hours=config["CHUNK_RETENTION_H"])
    ids = list(
        OutputChunk.objects.filter(command__completed_at__lt=cutoff).values_list("pk", flat=True)[
            : config["SWEEP_BATCH"] * 10
        ]
    )
    return OutputChunk.objects.filter(pk__in=ids).delete()[0]


@shared_task
def prune_full_output() -> int:
    """Delete full outputs (rows and stored files) older than ``FULL_OUTPUT_RETENTION_DAYS``."""
    return full_output.prune()
