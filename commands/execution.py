"""``exec()`` and ``exec_async()``: queue a command from Python and wait for its end.

``exec`` is woken by the same notifier as the relay long-poll (Redis or
Postgres across processes); without a broker it re-reads the row every 50 ms.
A retry only ever re-queues a command that no relay claimed, after
cancelling it, so a retry can never make a command run twice.

A command that needs approval (``commands.approvals``) is queued
``awaiting_approval``: ``exec`` waits for the decision (at most
``approval_timeout_ms`` if given, else until it is decided or expires), and
its claim timeout starts only once it is approved. Rejected, expired or
given up on, it ends ``cancelled`` with the reason, never runs, and is not
retried (a retry would need approving again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from commands import approvals, notify, packages, run_options
from commands.approval_model import Approval, Need
from commands.choices import CommandKind, CommandStatus, TargetType
from commands.models import Command


@dataclass(frozen=True)
class ExecResult:
    success: bool
    output: str = ""
    stderr: str = ""
    exit_code: int | None = None
    error: str = ""
    duration_ms: int | None = None
    timed_out: bool = False
    attempts: int = 1
    command_id: int | None = None
    status: str = ""
    # The state of its approval (approved, rejected, expired, withdrawn), or "" if it needed none.
    approval: str = ""


def exec_async(machine_id: str, command: str, *, target_type: str = TargetType.LOCAL, target_host: str = "",
               target_port: int | None = None, target_username: str = "", timeout_ms: int = 30_000,
               priority: int = 5, created_by: Any = None, options: dict[str, Any] | None = None,
               approval: Need | None = None) -> int:
    """Queue a command and return its id at once (through the approval gate; ``approval`` asks for approval).

    ``options``: ``working_directory``, ``environment``, ``run_as``, ``script``, ``interpreter`` and
    ``script_name`` as in the API; with a script, ``command`` is empty. A package command is
    ``options={"kind": "update_package", "package_action": "install", "packages": [...]}`` with an empty
    ``command`` (give it a longer ``timeout_ms``: installing takes a while)."""
    fields = {"command": command}
    if options and options.get("kind") == CommandKind.UPDATE_PACKAGE:
        if command or set(options) - {"kind", "package_action", "packages"}:
            raise ValidationError({"kind": ["a package command takes no command text or run options"]})
        fields = packages.checked(options, [machine_id])
    elif options:
        fields = run_options.checked(command, options, [machine_id])
    queued = Command(machine_id=machine_id, target_type=target_type, target_host=target_host or "",
                     target_port=target_port, target_username=target_username or "", timeout_ms=timeout_ms,
                     priority=priority, created_by=created_by, **fields)
    queued.full_clean(exclude=["created_by", "batch"])
    queued.save(approval=approval)
    return queued.pk


def exec(machine_id: str, command: str, *, target_type: str = TargetType.LOCAL, target_host: str = "",  # noqa: A001
         target_port: int | None = None, target_username: str = "", timeout_ms: int = 30_000, priority: int = 5,
         created_by: Any = None, claim_timeout_ms: int = 30_000, retries: int = 0, retry_delay_ms: int = 1_000,
         should_retry: Callable[[str, int], bool] | None = None, options: dict[str, Any] | None = None,
         approval: Need | None = None, approval_timeout_ms: int | None = None) -> ExecResult:
    """Run a command on a machine's relay and wait for its result.

    If no relay claims it within ``claim_timeout_ms`` it is cancelled and, while
    ``retries`` remain (and ``should_retry(error, attempt)`` agrees), queued again.
    A command a relay has claimed is never retried: it may have run.
    One that needs approval waits for it first (module docstring), and is never retried.
    """
    attempt = 0
    while True:
        attempt += 1
        command_id = exec_async(machine_id, command, target_type=target_type, target_host=target_host,
                                target_port=target_port, target_username=target_username, timeout_ms=timeout_ms,
                                priority=priority, created_by=created_by, options=options, approval=approval)
        result = _wait(command_id, claim_timeout_ms, attempt, approval_timeout_ms)
        retry = (attempt <= retries and not result.approval
                 and not Command.objects.filter(pk=command_id, attempt__gt=0).exists()
                 and (should_retry is None or should_retry(result.error, attempt)))
        if not retry:
            return result
        time.sleep(retry_delay_ms / 1000)


# How long a waiting exec() rides out a lost database (PostgreSQL restarted) before it gives up.
DB_RETRY_S = 60.0


def _read(command_id: int) -> Command:
    """The command's row. A connection the database dropped is replaced and the read tried again, every half
    second for up to ``DB_RETRY_S``: a waiting caller outlives a database restart."""
    give_up = None
    while True:
        try:
            return Command.objects.get(pk=command_id)
        except (OperationalError, InterfaceError):
            if give_up is None:
                give_up = time.monotonic() + DB_RETRY_S
            if connection.in_atomic_block or time.monotonic() >= give_up:
                raise  # a transaction cannot be resumed on a new connection
            connection.close()
            time.sleep(0.5)


def _poll_s() -> float:
    return 1.0 if notify.notifier.broadcast else 0.05


def _wait(command_id: int, claim_timeout_ms: int, attempt: int, approval_timeout_ms: int | None = None) -> ExecResult:
    topic = notify.command_topic(command_id)
    woken = notify.notifier.subscribe(topic)
    try:
        approve_by = None if approval_timeout_ms is None else time.monotonic() + approval_timeout_ms / 1000
        claim_by = None  # from the first look at it in the queue: once approved, for one that needed approval
        grace = timedelta(seconds=settings.RELAYHUB["TIMEOUT_GRACE_S"])
        while True:
            command = _read(command_id)
            if command.is_terminal:
                return _result(command, attempt)
            if command.status == CommandStatus.AWAITING_APPROVAL:
                if approve_by is not None and time.monotonic() >= approve_by:
                    if not command.withdraw():
                        continue  # decided just now
                    return ExecResult(False, error=f"not approved within {approval_timeout_ms} ms", attempts=attempt,
                                      command_id=command_id, status=command.status,
                                      approval=_approval_state(command_id))
                if approvals.expire_if_due(command):
                    continue  # no sweep ran yet: expired here, so that no wait outlasts the approval's time
            if command.status == CommandStatus.PENDING and claim_by is None:
                claim_by = time.monotonic() + claim_timeout_ms / 1000
            if command.status == CommandStatus.PENDING and time.monotonic() >= claim_by:
                if not command.withdraw():
                    continue  # claimed just now: wait for it instead
                return ExecResult(False, error=f"not claimed within {claim_timeout_ms} ms", timed_out=True,
                                  attempts=attempt, command_id=command_id, status=command.status,
                                  approval=_approval_state(command_id))
            if command.deadline_at and timezone.now() > command.deadline_at + grace:
                return ExecResult(False, error="execution timed out", timed_out=True, attempts=attempt,
                                  command_id=command_id, status=command.status)
            woken.wait(_poll_s())
            woken.clear()
    finally:
        notify.notifier.unsubscribe(topic, woken)


def wait_until_ended(command_id: int, timeout_s: float) -> Command:
    """The command once it has ended, or as it stands after ``timeout_s``; nothing is cancelled."""
    topic = notify.command_topic(command_id)
    woken = notify.notifier.subscribe(topic)
    try:
        until = time.monotonic() + timeout_s
        while True:
            command = _read(command_id)
            remaining = until - time.monotonic()
            if command.is_terminal or remaining <= 0:
                return command
            woken.wait(min(_poll_s(), remaining))
            woken.clear()
    finally:
        notify.notifier.unsubscribe(topic, woken)


def _result(command: Command, attempt: int) -> ExecResult:
    return ExecResult(
        success=command.status == CommandStatus.COMPLETED and command.exit_code in (0, None),
        output=command.output,
        stderr=command.stderr,
        exit_code=command.exit_code,
        error=command.error,
        duration_ms=command.duration_ms,
        timed_out=command.status == CommandStatus.TIMEOUT,
        attempts=attempt,
        command_id=command.pk,
        status=command.status,
        approval=_approval_state(command.pk),
    )


def _approval_state(command_id: int) -> str:
    return Approval.objects.filter(command=command_id).values_list("state", flat=True).first() or ""
