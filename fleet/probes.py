"""Test connection: a probe through a relay to an SSH target, and what it found.

The relay connects, reads the host key, logs in only if it trusts that key, and
runs nothing. It reports one JSON object as the probe's output (see the agent's
``probe`` module); a relay that predates probes runs ``true`` over SSH instead,
which still tells whether the login worked.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from commands.choices import CommandKind, CommandStatus, TargetType
from commands.models import Command
from fleet.models import SSHTarget
from fleet.selection import machine_for

PROBE_TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class ProbeReport:
    state: str  # "pending", "ok", "failed"
    reachable: bool | None = None
    host_key: str | None = None
    fingerprint: str | None = None
    host_key_status: str | None = None  # trusted, unknown, mismatch
    login: bool | None = None
    rtt_ms: int | None = None
    error: str = ""
    command_id: int | None = None
    tested_at: str | None = None

    def as_json(self) -> dict:
        return asdict(self)


def start(target: SSHTarget, user) -> Command:
    command = Command.objects.create(
        machine_id=machine_for(target, user), kind=CommandKind.PROBE, command="true", target_type=TargetType.SSH,
        target_host=target.host, target_port=target.port, target_username=target.username,
        target_name=target.name, timeout_ms=PROBE_TIMEOUT_MS, priority=10, created_by=user)
    SSHTarget.objects.filter(pk=target.pk).update(last_probe=command)
    target.last_probe = command
    return command


def report(command: Command | None) -> ProbeReport | None:
    if command is None:
        return None
    when = command.completed_at.isoformat() if command.completed_at else None
    if not command.is_terminal:
        return ProbeReport("pending", command_id=command.pk)
    found = _parse(command.output)
    ok = command.status == CommandStatus.COMPLETED and command.exit_code == 0
    if not found:  # a relay without probes ran `true`, or the probe never ran
        return ProbeReport("ok" if ok else "failed", reachable=True if ok else None, login=True if ok else None,
                           error="" if ok else (command.error or command.stderr or command.status)[:500],
                           command_id=command.pk, tested_at=when)
    return ProbeReport(
        "ok" if ok else "failed", reachable=found.get("reachable"), host_key=found.get("hostKey"),
        fingerprint=found.get("fingerprint"), host_key_status=found.get("hostKeyStatus"), login=found.get("login"),
        rtt_ms=found.get("rttMs"), error=str(found.get("error") or "")[:500], command_id=command.pk, tested_at=when)


def _parse(text: str) -> dict:
    try:
        found = json.loads(text.strip() or "null")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
