"""What each event says: a small JSON payload, and what rules filter it by.

A payload has ``type``, ``time`` (ISO 8601, UTC), ``summary`` (one line, the subject of an email and
the text of a Slack message) and the ids and names of what it concerns; ``routing`` adds ``id``. It
never holds a secret nor command output: of a command, at most the first ``TEXT_CHARS`` characters of
its command line and of its error text.

A failure is a command that ended ``failed`` or ``timeout`` (a timeout in the queue, never claimed,
included); test connections (probes) are never reported. **N failures in a row**: the commands with the
same command line (and script) for the same machine and SSH host and port, that ended ``completed``,
``failed`` or ``timeout``, ordered by when they ended; the event is raised by the failure that makes
the run of failures at the end of that list exactly N long, so once per run of failures: a command that
completes starts a new one, and cancelled or never-delivered commands neither count nor break it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from django.db.models import Q
from django.utils import timezone as django_timezone

from assignments.models import ConnectionEvent, RelayAssignment, RelayEvent
from commands import batches
from commands.choices import CommandKind, CommandStatus
from commands.models import Command, CommandBatch
from notifications.models import EventKind

TEXT_CHARS = 200
FAILURES = frozenset({CommandStatus.FAILED, CommandStatus.TIMEOUT})
ENDINGS = (CommandStatus.COMPLETED, CommandStatus.FAILED, CommandStatus.TIMEOUT)


@dataclass
class Occurrence:
    kind: str
    key: str | None  # one event per key
    payload: dict[str, Any]
    relays: list[tuple[str, dict]] = field(default_factory=list)  # (id, labels) of the relays it concerns
    template: str = ""  # the job template it came from
    threshold: int | None = None  # N, of N failures in a row


def _text(value: str | None) -> str:
    value = value or ""
    return value if len(value) <= TEXT_CHARS else value[: TEXT_CHARS - 1] + "…"


def _payload(kind: str, at: str, summary: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "time": at, "summary": summary, **fields}


def relay_info(relay: RelayAssignment) -> dict[str, str]:
    return {"id": str(relay.pk), "name": relay.name, "machine_id": relay.machine_id}


def relay_occurrence(kind: str, relay: RelayAssignment, at: str, summary: str, key: str | None,
                     **fields: Any) -> Occurrence:
    return Occurrence(kind, key, _payload(kind, at, summary, relay=relay_info(relay), **fields),
                      [(str(relay.pk), relay.labels or {})])


def from_relay_event(event_id: int, at: str) -> list[Occurrence]:
    """A heartbeat lost, or a connection that follows one (a recovery; a relay's first is not)."""
    event = RelayEvent.objects.select_related("relay").filter(pk=event_id).first()
    if event is None:
        return []
    relay, key = event.relay, f"relay_event:{event.pk}"
    at = iso(event.created_at)
    if event.kind == ConnectionEvent.HEARTBEAT_LOST:
        return [relay_occurrence(EventKind.RELAY_LOST, relay, at, f"Relay {relay} lost its heartbeat", key,
                                 reason=event.reason)]
    previous = relay.events.filter(pk__lt=event.pk).order_by("-pk").first()
    if event.kind != ConnectionEvent.CONNECTED or previous is None or previous.kind != ConnectionEvent.HEARTBEAT_LOST:
        return []
    down = int((event.created_at - previous.created_at).total_seconds())
    return [relay_occurrence(EventKind.RELAY_RECOVERED, relay, at, f"Relay {relay} is back after {down} s", key,
                             lost_at=iso(previous.created_at), down_s=down)]


def from_not_fetching(refs: dict[str, Any], at: str) -> list[Occurrence]:
    """A relay heard from but not fetching while commands waited (commands.fetching); once per episode."""
    relay = RelayAssignment.objects.filter(pk=refs["relay_id"]).first()
    if relay is None:
        return []
    last = refs.get("last_fetch_at")
    summary = f"Relay {relay} sends signs of life but has not fetched commands " + (
        f"since {last}" if last else "since it connected") + " while commands wait for its machine"
    return [relay_occurrence(EventKind.RELAY_NOT_FETCHING, relay, at, summary,
                             f"not_fetching:{relay.pk}:{refs['since']}", last_fetch_at=last)]


def _template_of(batch: CommandBatch | None) -> str:
    launch = getattr(batch, "launch", None) if batch is not None else None
    return launch.template.name if launch is not None else ""


def _relays_of(machine_ids: list[str]) -> list[tuple[str, dict]]:
    rows = RelayAssignment.objects.filter(machine_id__in=machine_ids).values_list("pk", "labels")
    return [(str(pk), labels or {}) for pk, labels in rows]


def from_command(command_id: int, kinds: list[str], thresholds: list[int], at: str) -> list[Occurrence]:
    command = Command.objects.select_related("claimed_by", "created_by", "batch__launch__template").filter(
        pk=command_id).first()
    if command is None or command.kind == CommandKind.PROBE or command.status not in FAILURES:
        return []
    relays = [(str(command.claimed_by.pk), command.claimed_by.labels or {})] if command.claimed_by else \
        _relays_of([command.machine_id])
    template = _template_of(command.batch)
    info = {
        "id": command.pk, "machine_id": command.machine_id, "target": command.target_name or command.target_host,
        "command": _text(command.command), "status": command.status, "exit_code": command.exit_code,
        "error": _text(command.error), "batch_id": command.batch_id,
        "created_by": command.created_by.get_username() if command.created_by else None,
    }
    fields = {"command": info, "template": template or None,
              "relay": relay_info(command.claimed_by) if command.claimed_by else None}
    at = iso(command.completed_at) if command.completed_at else at
    what = "timed out" if command.status == CommandStatus.TIMEOUT else "failed"
    code = f" (exit {command.exit_code})" if command.exit_code is not None else ""
    found = []
    if EventKind.COMMAND_FAILED in kinds:
        summary = f"Command #{command.pk} {what} on {command.machine_id}{code}: {_text(command.command)[:60]}"
        found.append(Occurrence(EventKind.COMMAND_FAILED, f"command_failed:{command.pk}",
                                _payload(EventKind.COMMAND_FAILED, at, summary, **fields), relays, template))
    if EventKind.FAILURE_REPEATED in kinds and thresholds:
        streak = failure_streak(command, max(thresholds))
        if streak in thresholds:
            summary = f"Command failed {streak} times in a row on {command.machine_id}: {_text(command.command)[:60]}"
            found.append(Occurrence(EventKind.FAILURE_REPEATED, f"command_failure_repeated:{command.pk}:{streak}",
                                    _payload(EventKind.FAILURE_REPEATED, at, summary, times=streak, **fields),
                                    relays, template, threshold=streak))
    return found


def failure_streak(command: Command, longest: int) -> int:
    """How many of the same command, up to this one, failed in a row (counted up to ``longest + 1``)."""
    same = Command.objects.filter(
        machine_id=command.machine_id, target_host=command.target_host, target_port=command.target_port,
        command=command.command, script=command.script, kind=CommandKind.COMMAND, status__in=ENDINGS,
    ).filter(Q(completed_at__lt=command.completed_at) | Q(completed_at=command.completed_at, pk__lte=command.pk))
    streak = 0
    for status in same.order_by("-completed_at", "-pk").values_list("status", flat=True)[: longest + 1]:
        if status not in FAILURES:
            break
        streak += 1
    return streak


def from_batch(batch_id: int, at: str) -> list[Occurrence]:
    batch = CommandBatch.objects.select_related("launch__template").filter(pk=batch_id).first()
    if batch is None:
        return []
    items = batches.targets(batch)
    status = batches.overall_status(batch, items)
    if status == "running":
        return []
    counts = batches.counts(items)
    template = _template_of(batch)
    summary = (f"Batch #{batch.pk} {status}: {counts['total']} targets, {counts.get('completed', 0)} completed, "
               f"{counts['failed_runs']} failed, {counts['not_delivered']} not delivered")
    info = {"id": batch.pk, "status": status, "counts": counts, "command": _text(batch.command),
            "selector": batch.selector, "machines": len(batch.machine_ids),
            "created_by": batch.created_by.get_username() if batch.created_by else None}
    return [Occurrence(EventKind.BATCH_FINISHED, f"batch_finished:{batch.pk}",
                       _payload(EventKind.BATCH_FINISHED, at, summary, batch=info, template=template or None),
                       _relays_of(batch.machine_ids), template)]


def from_approval(refs: dict[str, Any], at: str) -> list[Occurrence]:
    """``refs``: what the approvals flow sent (``approval_id``, ``command_ids``, ``batch_id``, ``template_name``,
    ``requested_by``); whatever it left out is left out here."""
    command_ids = [int(pk) for pk in refs.get("command_ids") or []]
    batch = CommandBatch.objects.select_related("launch__template").filter(pk=refs.get("batch_id")).first() \
        if refs.get("batch_id") is not None else None
    machines = list(Command.objects.filter(pk__in=command_ids).values_list("machine_id", flat=True).distinct())
    machines += batch.machine_ids if batch is not None else []
    template = refs.get("template_name") or _template_of(batch)
    if template:
        what = f"job template {template}"
    elif batch is not None:
        what = f"batch #{batch.pk}"
    else:
        what = ", ".join(f"command #{pk}" for pk in command_ids[:5]) or "a command"
    who = f" by {refs['requested_by']}" if refs.get("requested_by") else ""
    info = {"id": refs.get("approval_id"), "requested_by": refs.get("requested_by"), "reasons": refs.get("reasons", []),
            "batch_id": batch.pk if batch is not None else None, "command_ids": command_ids[:50]}
    key = f"approval_requested:{refs['approval_id']}" if refs.get("approval_id") is not None else None
    return [Occurrence(EventKind.APPROVAL_REQUESTED, key,
                       _payload(EventKind.APPROVAL_REQUESTED, at, f"Approval requested{who} for {what}",
                                approval=info, template=template or None),
                       _relays_of(list(dict.fromkeys(machines))), template)]


def from_scheduled_run(refs: dict[str, Any], at: str) -> list[Occurrence]:
    """``refs``: ``run_id``, ``schedule_id``, ``schedule_name``, ``template_name``, ``due_at``, ``reason`` and
    ``targets``, each if known."""
    template = refs.get("template_name") or ""
    name = refs.get("schedule_name") or (f"schedule {refs['schedule_id']}" if refs.get("schedule_id") else "a schedule")
    due = f" due at {refs['due_at']}" if refs.get("due_at") else ""
    info = {"id": refs.get("schedule_id"), "name": refs.get("schedule_name"), "run_id": refs.get("run_id"),
            "due_at": refs.get("due_at"), "reason": _text(refs.get("reason")), "targets": refs.get("targets", [])}
    key = None  # one event per run (or per schedule and due time)
    if refs.get("run_id") is not None:
        key = f"scheduled_run_missed:{refs['run_id']}"
    elif refs.get("schedule_id") is not None:
        key = f"scheduled_run_missed:{refs['schedule_id']}:{refs.get('due_at')}"
    return [Occurrence(EventKind.SCHEDULED_RUN_MISSED, key,
                       _payload(EventKind.SCHEDULED_RUN_MISSED, at, f"The run of {name}{due} never started",
                                schedule=info, template=template or None), [], template)]


def test_event(channel_name: str, at: str) -> Occurrence:
    summary = f"Test notification for channel {channel_name}"
    return Occurrence(EventKind.TEST, None, _payload(EventKind.TEST, at, summary))


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def now_iso() -> str:
    return iso(django_timezone.now())
