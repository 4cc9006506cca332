"""How the admin writes a command's facts: durations in human units, times with seconds and the zone, words
for booleans. The command page renders these and command.js fetches them again (``facts``) as the command moves."""

from __future__ import annotations

from typing import Any

from commands import packages
from commands.approval_model import Approval, of
from commands.choices import ApprovalState
from commands.models import Command
from relayhub.web.times import NONE, moment  # moment: the pages' times, used as display.moment


def human_ms(ms: int | None) -> str:
    """250 ms, 2.35 s, 30 s, 1 min 30 s, 2 min, 1 h 5 min."""
    if ms is None:
        return NONE
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f}".rstrip("0").rstrip(".") + " s"
    seconds = round(ms / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


# The live facts of the command page: key -> label. Keys name the page's [data-live] elements.
LABELS = {
    "timeout": "Timeout", "priority": "Priority", "attempt": "Attempt", "claimed_by": "Claimed by",
    "claimed_at": "Claimed at", "started_at": "Started at", "completed_at": "Completed at",
    "deadline_at": "Deadline", "error": "Error", "output_truncated": "Output truncated",
    "cancel_requested": "Cancel requested", "exit_code": "Exit code", "duration": "Duration",
    "queued_at": "Queued at", "updated_at": "Updated at",
}


def approval_text(approval: Approval | None) -> str:
    """How a command or batch stands with its approval, in one sentence; empty if it needed none."""
    if approval is None:
        return ""
    asked = f"requested by {approval.requested_by or '–'} at {moment(approval.requested_at)}"
    if approval.state == ApprovalState.PENDING:
        return (f"Awaiting approval: {asked} ({'; '.join(approval.reasons)}); it expires at "
                f"{moment(approval.expires_at)}.")
    if approval.state == ApprovalState.EXPIRED:
        return f"Approval expired at {moment(approval.expires_at)}, undecided ({asked})."
    if approval.state == ApprovalState.WITHDRAWN:
        return f"Cancelled at {moment(approval.decided_at)} while awaiting approval ({asked})."
    said = f": {approval.reason}" if approval.reason else ""
    return (f"{approval.get_state_display()} by {approval.decided_by or '–'} at {moment(approval.decided_at)}{said} "
            f"({asked}).")


def facts(command: Command) -> dict[str, str]:
    return {
        "approval": approval_text(of(command)),
        "timeout": human_ms(command.timeout_ms),
        "priority": str(command.priority),
        "attempt": str(command.attempt),
        "claimed_by": str(command.claimed_by) if command.claimed_by_id else NONE,
        "claimed_at": moment(command.claimed_at),
        "started_at": moment(command.started_at),
        "completed_at": moment(command.completed_at),
        "deadline_at": moment(command.deadline_at),
        "error": command.error or NONE,
        "output_truncated": yes_no(command.output_truncated),
        "cancel_requested": yes_no(command.cancel_requested),
        "exit_code": NONE if command.exit_code is None else str(command.exit_code),
        "duration": human_ms(command.duration_ms),
        "queued_at": moment(command.created_at),
        "updated_at": moment(command.updated_at),
        "packages": packages.outcome_text(command) or ("will show once the relay reports" if not command.is_terminal
                                                        else NONE),
    }


def state(command: Command) -> dict[str, Any]:
    """What command.js asks for when the status changes: the status, the end, and every fact as text."""
    return {"status": command.status, "finished": command.is_terminal, "error": command.error,
            "output_truncated": command.output_truncated, "cancel_requested": command.cancel_requested,
            "facts": facts(command)}
