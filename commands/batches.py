"""Fan-out of one command to many machines, with SSM-style concurrency and error limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.dispatch import receiver

from assignments import access
from commands.choices import CommandStatus
from commands.models import Command, CommandBatch
from commands.signals import batch_command_ended

WAITING = "waiting"
TEMPLATE_FIELDS = ("command", "target_type", "target_host", "target_port", "target_username", "timeout_ms",
                   "priority")


def visible_to(user: Any, rows: QuerySet[CommandBatch]) -> QuerySet[CommandBatch]:
    """The batches all of whose machines the user may see; model-wide viewers see them all."""
    if user.has_perm(access.VIEW):
        return rows
    visible = list(access.machine_ids_for(user).values_list("machine_id", flat=True))
    if connection.features.supports_json_field_contains:  # Postgres: jsonb <@, in the database
        return rows.filter(machine_ids__contained_by=visible)
    # SQLite has no JSON containment: decided here, over the batches' machine lists.
    allowed = set(visible)
    return rows.filter(pk__in=[pk for pk, machine_ids in rows.values_list("pk", "machine_ids")
                               if set(machine_ids) <= allowed])


def is_error(command: Command) -> bool:
    if command.status == CommandStatus.COMPLETED:
        return command.exit_code not in (0, None)
    return command.status in (CommandStatus.FAILED, CommandStatus.TIMEOUT)


def create(*, machine_ids: list[str], created_by: Any = None, max_concurrency: int | None = None,
           max_errors: int | None = None, **template: Any) -> CommandBatch:
    with transaction.atomic():
        batch = CommandBatch.objects.create(machine_ids=list(dict.fromkeys(machine_ids)), created_by=created_by,
                                            max_concurrency=max_concurrency, max_errors=max_errors, **template)
        _dispatch(batch)
    return batch


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
    commands = list(batch.commands.all())
    errors = sum(is_error(command) for command in commands)
    if not batch.stopped and batch.max_errors is not None and errors > batch.max_errors:
        batch.stopped = True
        batch.save(update_fields=["stopped"])
        for command in commands:
            if command.status == CommandStatus.PENDING:
                command.withdraw()
    if batch.stopped:
        return
    dispatched = {command.machine_id for command in commands}
    in_flight = sum(not command.is_terminal for command in commands)
    room = len(batch.machine_ids) if batch.max_concurrency is None else batch.max_concurrency - in_flight
    waiting = [machine_id for machine_id in batch.machine_ids if machine_id not in dispatched]
    template = {field: getattr(batch, field) for field in TEMPLATE_FIELDS}
    for machine_id in waiting[: max(room, 0)]:
        Command.objects.create(batch=batch, machine_id=machine_id, created_by=batch.created_by, **template)


@dataclass(frozen=True)
class Target:
    machine_id: str
    status: str
    command: Command | None


def targets(batch: CommandBatch) -> list[Target]:
    by_machine = {command.machine_id: command for command in batch.commands.all()}
    undispatched = CommandStatus.CANCELLED if batch.stopped else WAITING
    return [
        Target(machine_id, by_machine[machine_id].status if machine_id in by_machine else undispatched,
               by_machine.get(machine_id))
        for machine_id in batch.machine_ids
    ]


def overall_status(batch: CommandBatch, items: list[Target]) -> str:
    if any(item.status not in CommandStatus.terminal() for item in items):
        return "running"
    if batch.stopped:
        return "stopped"
    if all(item.command is not None and not is_error(item.command) and item.status == CommandStatus.COMPLETED
           for item in items):
        return "completed"
    return "failed"
