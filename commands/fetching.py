"""Relays that look alive but do nothing: signs of life, yet no fetch while commands wait for their machine.

The original relay CLI started in its subscription mode is the case seen: its WebSocket endpoint
answers 404 here, it goes on sending heartbeats, so it looks online, and it never lists, long-polls
or claims a command. A sweep flags such a relay ``not_fetching_since`` (once per episode, with a
WARNING and the ``relay_not_fetching`` signal) when, for ``NOT_FETCHING_S``, it has been heard from
without fetching while a command of its machine has waited as long and it runs nothing. Its next
fetch clears the flag (``RelayStatus.record_fetch``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from assignments.models import ConnectionEvent, RelayEvent, RelayStatus, online_since
from assignments.signals import relay_not_fetching
from commands.choices import CommandStatus
from commands.models import Command

log = logging.getLogger(__name__)


def flag_not_fetching(now: datetime | None = None) -> list[RelayStatus]:
    """Flag the relays that stopped fetching; the ones newly flagged."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.RELAYHUB["NOT_FETCHING_S"])
    candidates = list(RelayStatus.objects.select_related("relay").filter(
        relay__enabled=True, last_heartbeat_at__gt=online_since(), not_fetching_since__isnull=True)
        .filter(Q(last_fetch_at__isnull=True) | Q(last_fetch_at__lt=cutoff))[:settings.RELAYHUB["SWEEP_BATCH"]])
    if not candidates:
        return []
    machines = {status.relay.machine_id for status in candidates}
    waiting = dict(Command.objects.filter(status=CommandStatus.PENDING, created_at__lt=cutoff, machine_id__in=machines)
                   .values_list("machine_id").annotate(oldest=Max("created_at")).values_list("machine_id", "oldest"))
    busy = set(Command.objects.filter(status__in=CommandStatus.active(), claimed_by__in=[s.pk for s in candidates])
               .values_list("claimed_by", flat=True))
    # A relay that never fetched is judged from when it (re)connected: a relay just started is not idle yet.
    connected = dict(RelayEvent.objects.filter(relay__in=[s.pk for s in candidates if s.last_fetch_at is None],
                                               kind=ConnectionEvent.CONNECTED)
                     .values_list("relay").annotate(at=Max("created_at")).values_list("relay", "at"))
    flagged = []
    for status in candidates:
        since = status.last_fetch_at or connected.get(status.pk)
        if status.relay.machine_id in waiting and status.pk not in busy and since is not None and since < cutoff:
            flagged.append(status)
    with transaction.atomic():
        marked = set(RelayStatus.objects.filter(pk__in=[s.pk for s in flagged], not_fetching_since__isnull=True)
                     .values_list("pk", flat=True))
        RelayStatus.objects.filter(pk__in=marked).update(not_fetching_since=now)
    newly = [status for status in flagged if status.pk in marked]
    for status in newly:
        status.not_fetching_since = now
        log.warning("relay %s (machine %s) sends signs of life but has not fetched commands since %s while "
                    "commands wait for its machine", status.relay.name, status.relay.machine_id,
                    (status.last_fetch_at or "it connected"))
        transaction.on_commit(lambda status=status: relay_not_fetching.send(
            sender=RelayStatus, relay=status.relay, last_fetch_at=status.last_fetch_at, since=now))
    return newly
