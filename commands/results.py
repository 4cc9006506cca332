"""Applying a relay's result: only the claimant, fenced by attempt, idempotent."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

from commands import packages
from commands.choices import CommandStatus
from commands.models import Command, IllegalTransition
from commands.output import cap_final
from relayhub.web.fields import INT32_MAX, INT32_MIN, StrictBooleanField, StrictCharField, StrictIntegerField, wire_id


class ResultBody(serializers.Serializer):
    commandId = StrictCharField()
    success = StrictBooleanField()
    output = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, allow_null=True)
    stderr = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, allow_null=True)
    exitCode = StrictIntegerField(required=False, allow_null=True, min_value=INT32_MIN, max_value=INT32_MAX)
    error = StrictCharField(required=False, allow_blank=True, allow_null=True)
    durationMs = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=INT32_MAX)
    attempt = StrictIntegerField(required=False, min_value=1, max_value=INT32_MAX)
    status = serializers.ChoiceField([CommandStatus.TIMEOUT, CommandStatus.CANCELLED], required=False)
    outputTruncated = StrictBooleanField(required=False)
    packageResult = packages.WirePackageResult(required=False, help_text=(
        "Extension (capability packages): what a package command did, per package."))


@dataclass(frozen=True)
class Outcome:
    http_status: int
    error: str = ""


def find_command(relay, command_id: str, **filters: Any) -> Command | None:
    """The command if this relay may act on it; unknown ids and others' commands look alike."""
    pk = wire_id(command_id)
    if pk is None:
        return None
    return Command.objects.filter(pk=pk, machine_id=relay.machine_id, **filters).first()


def _normalise(body: dict) -> dict[str, Any]:
    output, out_cut = cap_final(body.get("output") or "")
    stderr, err_cut = cap_final(body.get("stderr") or "")
    status = body.get("status") or (CommandStatus.COMPLETED if body["success"] else CommandStatus.FAILED)
    return {
        "status": status,
        "output": output,
        "stderr": stderr,
        "exit_code": body.get("exitCode"),
        "error": (body.get("error") or "")[:10_000],
        "duration_ms": body.get("durationMs"),
        "output_truncated": bool(body.get("outputTruncated")) or out_cut or err_cut,
        # Only a package command's result has it: the one-statement finish writes the same columns for all.
        **({"package_result": packages.stored(body["packageResult"])} if body.get("packageResult") else {}),
    }


def _digest(result: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()


def _settled(command: Command, digest: str) -> Outcome:
    if command.result_digest == digest:
        return Outcome(200)
    return Outcome(409, f"command already {command.status}; a different result is not applied")


def _result(body: dict) -> dict[str, Any]:
    result = _normalise(body)
    return {**result, "result_digest": _digest(result)}


def submit(relay, body: dict) -> Outcome:
    return submit_many(relay, [body])[0]


def submit_many(relay, bodies: list[dict]) -> list[Outcome]:
    """Each validated result answered on its own; the usual ones are applied in one statement."""
    results = [_result(body) for body in bodies]
    fast: dict[int, tuple[int, int, dict[str, Any]]] = {}
    for body, result in zip(bodies, results):
        pk = wire_id(body["commandId"])
        if pk is not None and "attempt" in body and pk not in fast and "package_result" not in result:
            fast[pk] = (pk, body["attempt"], result)
    moved = Command.finish_claimed(relay, list(fast.values()))
    outcomes = []
    for body, result in zip(bodies, results):
        key = (wire_id(body["commandId"]), body.get("attempt"))
        if key in moved:
            moved.discard(key)  # a second copy of the same result is judged against the first
            outcomes.append(Outcome(200))
        else:
            outcomes.append(_judge(relay, body, result))
    return outcomes


def _judge(relay, body: dict, result: dict[str, Any]) -> Outcome:
    """Not the usual case (no attempt, a resend, a stale attempt, someone else's): judge on the row."""
    digest = result["result_digest"]
    command = find_command(relay, body["commandId"], claimed_by=relay)
    if command is None:
        return Outcome(404, "command not found")
    if command.is_terminal:
        return _settled(command, digest)
    attempt = body.get("attempt", command.attempt)
    if attempt != command.attempt:
        return Outcome(409, f"stale attempt {attempt}; the command is on attempt {command.attempt}")
    try:
        command.finish(relay, attempt, **result)
    except IllegalTransition:
        # Lost a race (the sweeper, or a concurrent resend): judge against what won.
        return _settled(command, digest)
    return Outcome(200)
