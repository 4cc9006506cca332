"""Where events come from: signals of the apps below, each turned into a ``dispatch`` task when a rule listens.

Receivers run where the signal is sent (a relay's request, a sweep, an admin action), so they do one
query (does an enabled rule listen?) and queue a task once the transaction commits; the worker builds
the event. They never raise: a notification must not fail what it reports.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from assignments.models import ConnectionEvent, RelayEvent
from assignments.signals import relay_not_fetching
from commands.choices import CommandStatus
from commands.models import Command, CommandBatch
from commands.signals import approval_requested, batch_command_ended, command_ended
from notifications import events, routing, tasks
from notifications.models import EventKind

log = logging.getLogger(__name__)
RELAY_KINDS = {ConnectionEvent.HEARTBEAT_LOST: EventKind.RELAY_LOST,
               ConnectionEvent.CONNECTED: EventKind.RELAY_RECOVERED}


def announce(source: str, refs: Iterable[dict[str, Any]], kinds: list[str]) -> None:
    """If a rule listens for any of ``kinds``, queue a ``dispatch`` of each ``refs`` once committed."""
    try:
        wanted = routing.listening(kinds)
        if wanted:
            at, refs = events.now_iso(), list(refs)
            transaction.on_commit(lambda: _queue(source, refs, wanted, at))
    except Exception as exc:  # noqa: BLE001
        log.error("notifications: could not look for rules (%s)", type(exc).__name__)


def _queue(source: str, refs: list[dict[str, Any]], kinds: list[str], at: str) -> None:
    for ref in refs:
        try:
            tasks.dispatch.delay(source, ref, kinds, at)
        except Exception as exc:  # noqa: BLE001 - the broker is away: this event is lost, the caller is not
            log.error("notifications: could not queue a %s event (%s)", source, type(exc).__name__)


@receiver(post_save, sender=RelayEvent, dispatch_uid="notifications.relay_event")
def _relay_event(sender: type, instance: RelayEvent, created: bool, **kwargs: Any) -> None:
    """``RelayStatus.record_event`` writes one row per flip: heartbeat lost, or connected (a recovery if it
    follows a loss; ``events.from_relay_event`` decides)."""
    if created and instance.kind in RELAY_KINDS:
        announce("relay_event", [{"relay_event_id": instance.pk}], [RELAY_KINDS[instance.kind]])


@receiver(command_ended, dispatch_uid="notifications.command_ended")
def _command_ended(sender: type, ended: list[tuple[int, str]], **kwargs: Any) -> None:
    failed = [pk for pk, status in ended if status in events.FAILURES]
    if failed:
        announce("command", [{"command_id": pk} for pk in failed],
                 [EventKind.COMMAND_FAILED, EventKind.FAILURE_REPEATED])


@receiver(batch_command_ended, dispatch_uid="notifications.batch_command_ended")
def _batch_command_ended(sender: type, batch_id: int, **kwargs: Any) -> None:
    """Connected after ``commands.batches.advance`` (the commands app is readied first), so a batch that it
    moved on is seen running."""
    try:
        if routing.listening([EventKind.BATCH_FINISHED]) and _all_ended(batch_id):
            announce("batch", [{"batch_id": batch_id}], [EventKind.BATCH_FINISHED])
    except Exception as exc:  # noqa: BLE001
        log.error("notifications: could not judge batch %s (%s)", batch_id, type(exc).__name__)


def _all_ended(batch_id: int) -> bool:
    batch = CommandBatch.objects.filter(pk=batch_id).only("stopped", "destinations").first()
    copies = Command.objects.filter(batch_id=batch_id)
    if batch is None or copies.exclude(status__in=CommandStatus.terminal()).exists():
        return False
    return batch.stopped or copies.count() >= len(batch.destinations)


@receiver(relay_not_fetching, dispatch_uid="notifications.relay_not_fetching")
def _relay_not_fetching(sender: type, relay: Any, last_fetch_at: datetime | None, since: datetime,
                        **kwargs: Any) -> None:
    announce("not_fetching", [{"relay_id": str(relay.pk), "since": events.iso(since),
                               "last_fetch_at": events.iso(last_fetch_at) if last_fetch_at else None}],
             [EventKind.RELAY_NOT_FETCHING])


@receiver(approval_requested, dispatch_uid="notifications.approval_requested")
def _approval_requested(sender: Any, **kwargs: Any) -> None:
    """``approval`` (an Approval of a command or a batch: its ``command_id``, ``batch_id``, ``requested_by`` and
    ``reasons`` are read), or the same as plain ``approval_id``, ``command_ids``, ``batch_id``, ``requested_by``;
    ``template_name`` if known (otherwise the batch's launch tells)."""
    approval = kwargs.get("approval")
    command_id = getattr(approval, "command_id", None)
    user = kwargs.get("requested_by") or getattr(approval, "requested_by", None)
    refs = {
        "approval_id": _plain(kwargs.get("approval_id") or getattr(approval, "pk", None)),
        "command_ids": [int(pk) for pk in kwargs.get("command_ids") or ([command_id] if command_id else [])],
        "batch_id": kwargs.get("batch_id") or getattr(approval, "batch_id", None),
        "template_name": kwargs.get("template_name") or "",
        "requested_by": user if isinstance(user, str) or user is None else user.get_username(),
        "reasons": [str(reason)[: events.TEXT_CHARS] for reason in getattr(approval, "reasons", None) or []][:10],
    }
    announce("approval", [refs], [EventKind.APPROVAL_REQUESTED])


def _scheduled_run_never_started(sender: Any, **kwargs: Any) -> None:
    """``runbooks.signals.scheduled_run_never_started``: ``run`` (its ``pk``, ``slot`` and ``reason`` are read),
    ``schedule`` (``pk``, ``name``, ``template``) and ``targets`` (names of the targets that never started);
    or the same as plain ``run_id``, ``schedule_id``, ``schedule_name``, ``template_name``, ``due_at``, ``reason``."""
    run, schedule = kwargs.get("run"), kwargs.get("schedule") or getattr(kwargs.get("run"), "schedule", None)
    template = kwargs.get("template") or getattr(schedule, "template", None)
    due = kwargs.get("due_at") or getattr(run, "slot", None)
    refs = {
        "run_id": _plain(kwargs.get("run_id") or getattr(run, "pk", None)),
        "schedule_id": _plain(kwargs.get("schedule_id") or getattr(schedule, "pk", None)),
        "schedule_name": kwargs.get("schedule_name") or getattr(schedule, "name", None),
        "template_name": kwargs.get("template_name") or (template if isinstance(template, str) else
                                                          getattr(template, "name", "")) or "",
        "due_at": events.iso(due) if isinstance(due, datetime) else _plain(due),
        "reason": str(kwargs.get("reason") or getattr(run, "reason", "") or "")[: events.TEXT_CHARS],
        "targets": [str(name) for name in kwargs.get("targets") or []][:50],
    }
    announce("scheduled_run", [refs], [EventKind.SCHEDULED_RUN_MISSED])


def connect_scheduled_runs() -> bool:
    """Receive ``scheduled_run_never_started`` if ``runbooks.signals`` defines it (the schedules work adds it)."""
    try:
        from runbooks.signals import scheduled_run_never_started
    except ImportError:
        return False
    scheduled_run_never_started.connect(_scheduled_run_never_started,
                                        dispatch_uid="notifications.scheduled_run_never_started")
    return True


def _plain(value: Any) -> str | int | None:
    return value if value is None or isinstance(value, int | str) else str(value)
