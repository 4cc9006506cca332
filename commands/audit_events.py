"""What the audit trail keeps of commands and batches: where, what, how many; never a secret value.

Secret parameters travel in ``secret_environment`` as credential names only, and are not recorded here either.
"""

from __future__ import annotations

from typing import Any

from audit import trail
from audit.models import Action

COMMAND_CHARS = 500  # a long command is recorded by its start


def _what(item: Any) -> dict[str, Any]:
    detail: dict[str, Any] = {"command": item.command[:COMMAND_CHARS], "target_type": item.target_type}
    if item.target_host:
        detail["target_host"] = item.target_host
    if getattr(item, "script", ""):
        detail["script"] = f"{item.interpreter or 'sh'} script, {len(item.script)} characters"
    if item.run_as:
        detail["run_as"] = item.run_as
    return detail


def command_queued(command: Any) -> None:
    trail.record(Action.COMMAND_QUEUE, actor=command.created_by, obj=command,
                 detail={"machine": command.machine_id, **_what(command), "status": command.status})


def command_cancelled(command: Any) -> None:
    trail.record(Action.COMMAND_CANCEL, obj=command, detail={"machine": command.machine_id, "status": command.status})


def command_rerun(original: Any, new: Any) -> None:
    trail.record(Action.COMMAND_RERUN, actor=new.created_by, obj=original,
                 detail={"new_command": new.pk, "machine": new.machine_id})


def batch_queued(batch: Any) -> None:
    trail.record(Action.BATCH_QUEUE, actor=batch.created_by, obj=batch,
                 detail={"targets": len(batch.destinations), "machines": batch.machine_ids[:50],
                         "selector": batch.selector, **_what(batch)})


def batch_cancelled(batch: Any, cancelled: int) -> None:
    trail.record(Action.BATCH_CANCEL, obj=batch, detail={"cancelled_targets": cancelled})


def decided(approval: Any, user: Any) -> None:
    action = Action.APPROVAL_APPROVE if approval.state == "approved" else Action.APPROVAL_REJECT
    what = ("command", approval.command_id) if approval.command_id is not None else ("batch", approval.batch_id)
    trail.record(action, actor=user, object_type=what[0], object_id=what[1], object_repr=f"{what[0]} {what[1]}",
                 detail={"approval": approval.pk, "reason": approval.reason, "requested_by": str(approval.requested_by or "")})
