"""Fan-out of one command to many destinations, with SSM-style concurrency and error limits.

A destination is a machine (the command runs on whichever of its relays
claims it) or an SSH target behind one. A copy whose machine has no enabled
relay online when its turn comes is recorded ``undelivered`` at once: it is
counted apart and never against ``max_errors``, which counts runs that failed.

A batch that needs approval (``commands.approvals``) is created with its
pending Approval and dispatches nothing until it is approved; rejected or
expired, each target is recorded cancelled with the reason.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.dispatch import receiver
from django.utils import timezone

from assignments import access, reachability
from commands import approval_model, audit_events, notify, run_options
from commands.approval_model import Approval, Need
from commands.choices import ApprovalState, CommandKind, CommandStatus, TargetType
from commands.models import MAX_BATCH_TARGETS, Command, CommandBatch, IllegalTransition
from commands.signals import batch_command_ended
from relayhub.web import metrics

WAITING = "waiting"
TEMPLATE_FIELDS = ("command", "target_type", "target_host", "target_port", "target_username", "timeout_ms",
                   "priority", *run_options.COPIED_FIELDS)


class LimitError(ValueError):
    pass


def check_limit(value: int | str | None, *, name: str, minimum: int) -> int | str | None:
    """A whole number from ``minimum``, or a percentage such as "10%"; ``LimitError`` otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().endswith("%"):
        text = value.strip()[:-1].strip()
        if not text.isdecimal() or not 0 <= int(text) <= 100:
            raise LimitError(f"{name} must be a whole number or a percentage from 0% to 100%, not {value!r}")
        return f"{int(text)}%"
    if isinstance(value, str) and value.strip().isdecimal():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_BATCH_TARGETS:
        raise LimitError(f"{name} must be a whole number from {minimum} to {MAX_BATCH_TARGETS}, or a percentage "
                         f"such as 10%, not {value!r}")
    return value


def resolve_limit(value: int | str | None, total: int, *, name: str, minimum: int) -> int | None:
    """A number, or a percentage of ``total`` ("25%"): up for concurrency (at least 1), down for errors."""
    value = check_limit(value, name=name, minimum=minimum)
    if isinstance(value, str):
        share = int(value[:-1]) * total / 100
        return max(math.ceil(share) if minimum else math.floor(share), minimum)
    return value


def visible_to(user: Any, rows: QuerySet[CommandBatch]) -> QuerySet[CommandBatch]:
    """The batches all of whose machines the user may see, and the user's own; model-wide viewers see them all."""
    if user.has_perm(access.VIEW):
        return rows
    visible = within(rows, access.machine_ids_for(user).values_list("machine_id", flat=True))
    return visible | rows.filter(created_by=user) if getattr(user, "pk", None) else visible


def within(rows: QuerySet[CommandBatch], machine_ids: Any) -> QuerySet[CommandBatch]:
    """The batches all of whose machines are among ``machine_ids``."""
    allowed = list(dict.fromkeys(machine_ids))
    if connection.features.supports_json_field_contains:  # Postgres: jsonb <@, in the database
        return rows.filter(machine_ids__contained_by=allowed)
    # SQLite has no JSON containment: decided here, over the batches' machine lists.
    return rows.filter(pk__in=[pk for pk, machine_ids in rows.values_list("pk", "machine_ids")
                               if set(machine_ids) <= set(allowed)])


def is_error(command: Command) -> bool:
    """A run that failed; a copy never delivered is not one."""
    return _failed(command.status, command.exit_code, command.claimed_at)


def _failed(status: str, exit_code: int | None, claimed_at: object) -> bool:
    if status == CommandStatus.COMPLETED:
        return exit_code not in (0, None)
    if status == CommandStatus.TIMEOUT and claimed_at is None:
        return False  # timed out in the queue: no relay ever took it
    return status in (CommandStatus.FAILED, CommandStatus.TIMEOUT)


def is_undelivered(command: Command) -> bool:
    return command.status == CommandStatus.UNDELIVERED or (
        command.status == CommandStatus.TIMEOUT and command.claimed_at is None)


def create(*, destinations: list[dict] | None = None, machine_ids: list[str] | None = None, created_by: Any = None,
           max_concurrency: int | str | None = None, max_errors: int | str | None = None, selector: str = "",
           queue_if_offline: bool = False, approval: Need | None = None, **template: Any) -> CommandBatch:
    """``destinations``: ``{"machine_id"}`` each, plus ``name`` and the target fields for an SSH target;
    or ``machine_ids``, one destination each. ``queue_if_offline`` queues copies for machines with no
    relay online instead of recording them undelivered. The approval gate: with ``approval``, or when an
    enabled relay of a machine requires approval, the batch waits for approval and dispatches nothing yet."""
    if destinations is None:
        destinations = machine_destinations(machine_ids or [])
    total = len(destinations)
    concurrency = resolve_limit(max_concurrency, total, name="max_concurrency", minimum=1)
    errors = resolve_limit(max_errors, total, name="max_errors", minimum=0)
    machines = list(dict.fromkeys(d["machine_id"] for d in destinations))
    with transaction.atomic():
        need = approval_model.needed_for(machines, approval)
        batch = CommandBatch.objects.create(
            destinations=destinations, machine_ids=machines,
            selector=selector, created_by=created_by, max_concurrency=concurrency, max_errors=errors,
            queue_if_offline=queue_if_offline, **template)
        if need is None:
            _dispatch(batch)
        else:
            Approval.open(need, batch=batch, requested_by=created_by)
        audit_events.batch_queued(batch)
    return batch


def held_back(batch: CommandBatch) -> bool:
    """Whether the batch waits for approval, or was never approved."""
    approval = approval_model.of(batch)
    return approval is not None and approval.state != ApprovalState.APPROVED


def machine_destinations(machine_ids: list[str]) -> list[dict]:
    return [{"machine_id": machine_id} for machine_id in dict.fromkeys(machine_ids)]


@receiver(batch_command_ended, dispatch_uid="commands.batches.advance")
def _on_batch_command_ended(sender: type, batch_id: int, **kwargs: object) -> None:
    advance(batch_id)


def advance(batch_id: int) -> None:
    """Called when a target ends: stop past max_errors, else dispatch waiting targets."""
    with transaction.atomic():
        batch = CommandBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is not None:
            _dispatch(batch)


def _dispatch(batch: CommandBatch) -> None:
    # Called on every result of the batch: the copies are read as plain values, and new ones inserted at once.
    if batch.stopped:
        return
    if batch.max_errors is None and batch.commands.count() >= len(batch.destinations):
        return  # every copy is out and no error count can stop it: nothing to do
    copies = list(batch.commands.values_list("batch_index", "status", "exit_code", "claimed_at"))
    if not copies and held_back(batch):
        return  # nothing goes out before it is approved (a batch with copies out was approved, or needed none)
    errors = sum(_failed(status, exit_code, claimed_at) for _, status, exit_code, claimed_at in copies)
    if batch.max_errors is not None and errors > batch.max_errors:
        batch.stopped = True
        batch.save(update_fields=["stopped"])
        for command in batch.commands.filter(status=CommandStatus.PENDING):
            command.withdraw()
        return
    dispatched = {index for index, *_ in copies}
    in_flight = sum(status not in CommandStatus.terminal() for _, status, *_ in copies)
    room = len(batch.destinations) if batch.max_concurrency is None else batch.max_concurrency - in_flight
    waiting = [(index, d) for index, d in enumerate(batch.destinations) if index not in dispatched]
    if not waiting or room <= 0:
        return
    states = reachability.of_machines(d["machine_id"] for _, d in waiting)
    now = timezone.now()
    new: list[Command] = []
    for index, destination in waiting:
        fields = _copy_fields(batch, index, destination, now)
        if states[destination["machine_id"]] != reachability.ONLINE and not batch.queue_if_offline:
            new.append(Command(status=CommandStatus.UNDELIVERED, completed_at=now, **fields,
                               error=f"no enabled relay is online for machine {destination['machine_id']!r}"))
            continue
        if room <= 0:
            break
        new.append(Command(**fields))
        room -= 1
    Command.objects.bulk_create(new)  # bypasses Command.save: wake the relays and count them here
    metrics.command_queued(len(new))
    metrics.commands_finished([(c.status, None) for c in new if c.status == CommandStatus.UNDELIVERED], now)
    topics = list(dict.fromkeys(notify.machine_topic(c.machine_id) for c in new if c.status == CommandStatus.PENDING))
    if new:  # the relays, and whoever follows the batch (its page)
        topics.append(notify.batch_topic(batch.pk))
        transaction.on_commit(lambda: notify.publish_many(topics))


def _copy_fields(batch: CommandBatch, index: int, destination: dict, now: Any) -> dict[str, Any]:
    fields = {field: getattr(batch, field) for field in TEMPLATE_FIELDS}
    fields.update(batch=batch, batch_index=index, machine_id=destination["machine_id"], created_by=batch.created_by,
                  target_name=destination.get("name", ""), created_at=now)
    if batch.agent_release:
        fields.update(kind=CommandKind.UPDATE_AGENT, agent_release=batch.agent_release)
    if "target_host" in destination:
        fields.update({name: destination.get(name) or "" for name in ("target_host", "target_username")},
                      target_port=destination.get("target_port"), target_type=TargetType.SSH)
    return fields


def refuse(batch_id: int, error: str) -> None:
    """A batch that was rejected or whose approval expired: stopped, each target recorded cancelled with ``error``."""
    with transaction.atomic():
        batch = CommandBatch.objects.select_for_update().get(pk=batch_id)
        batch.stopped = True
        batch.save(update_fields=["stopped"])
        sent = set(batch.commands.values_list("batch_index", flat=True))
        now = timezone.now()
        Command.objects.bulk_create([
            Command(**_copy_fields(batch, index, destination, now), status=CommandStatus.CANCELLED, completed_at=now,
                    error=error) for index, destination in enumerate(batch.destinations) if index not in sent])


@dataclass(frozen=True)
class Target:
    index: int
    machine_id: str
    name: str
    host: str
    status: str
    command: Command | None

    @property
    def undelivered(self) -> bool:
        return self.command is not None and is_undelivered(self.command)

    @property
    def failed(self) -> bool:
        return self.command is not None and is_error(self.command)


def targets(batch: CommandBatch) -> list[Target]:
    by_index = {command.batch_index: command for command in batch.commands.all()}
    undispatched = CommandStatus.CANCELLED if batch.stopped else WAITING
    if not by_index and not batch.stopped and held_back(batch):
        undispatched = CommandStatus.AWAITING_APPROVAL
    items = []
    for index, destination in enumerate(batch.destinations):
        command = by_index.get(index)
        host = destination.get("target_host") or batch.target_host or ""
        items.append(Target(index, destination["machine_id"], destination.get("name", ""), host,
                            command.status if command is not None else undispatched, command))
    return items


def counts(items: list[Target]) -> dict[str, int]:
    """Targets by status, plus how many failed (against max_errors) and how many were never delivered."""
    by_status = Counter(item.status for item in items)
    return {**dict(sorted(by_status.items())), "failed_runs": sum(item.failed for item in items),
            "not_delivered": sum(item.undelivered for item in items), "total": len(items)}


def overall_status(batch: CommandBatch, items: list[Target]) -> str:
    """awaiting_approval, running, stopped (past max_errors, or cancelled), rejected or expired (never approved),
    completed (every target ran and exited 0), failed (a run failed), or incomplete (none failed, but some never
    ran: not delivered, or cancelled)."""
    if any(item.status == CommandStatus.AWAITING_APPROVAL for item in items):
        return CommandStatus.AWAITING_APPROVAL
    if any(item.status not in CommandStatus.terminal() for item in items):
        return "running"
    if batch.stopped:
        approval = approval_model.of(batch)
        if approval is not None and approval.state in (ApprovalState.REJECTED, ApprovalState.EXPIRED):
            return approval.state
        return "stopped"
    if any(item.failed for item in items):
        return "failed"
    if all(item.status == CommandStatus.COMPLETED for item in items):
        return "completed"
    return "incomplete"


def cancel(batch_id: int) -> list[Command]:
    """Stop the batch, so that nothing more is dispatched, and cancel every copy not yet ended.

    Returns the copies it cancelled (pending ones at once, running ones by asking their relay to kill them).
    """
    with transaction.atomic():
        batch = CommandBatch.objects.select_for_update().get(pk=batch_id)
        if not batch.stopped:
            batch.stopped = True
            batch.save(update_fields=["stopped"])
        Approval.objects.filter(batch=batch_id, state=ApprovalState.PENDING).update(
            state=ApprovalState.WITHDRAWN, decided_at=timezone.now())
    cancelled = []
    for command in batch.commands.exclude(status__in=CommandStatus.terminal()).order_by("batch_index"):
        try:
            command.cancel()
        except IllegalTransition:
            continue  # it ended meanwhile
        cancelled.append(command)
    audit_events.batch_cancelled(batch, len(cancelled))
    return cancelled


def failed_destinations(batch: CommandBatch) -> list[dict]:
    """What "rerun the failed targets" sends again: runs that failed, and copies never delivered."""
    return [batch.destinations[item.index] for item in targets(batch) if item.failed or item.undelivered]
