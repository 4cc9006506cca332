"""What ``manage.py relay_exec`` needs beyond parsing: who acts, following a batch line by line, the summary."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from dataclasses import dataclass, field
from typing import TextIO

from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework import exceptions

from audit import trail
from commands import batches, output
from commands.choices import CommandStatus, Stream
from commands.models import CommandBatch

# Exit codes (also in relay_exec's help).
EXIT_OK = 0
EXIT_FAILED = 1  # a run failed, timed out or was cancelled
EXIT_USAGE = 2  # bad options, a malformed selector, a selector or name that matches nothing
EXIT_UNDELIVERED = 69  # EX_UNAVAILABLE: no relay online to take it (and nothing failed)
EXIT_INTERRUPTED = 130  # Ctrl-C: what it queued was cancelled

POLL_S = 0.2
# Outcomes, in the order the summary lists them.
COMPLETED, FAILED, TIMED_OUT, CANCELLED, NOT_DELIVERED = "completed", "failed", "timed out", "cancelled", \
    "not delivered"
OUTCOMES = (COMPLETED, FAILED, TIMED_OUT, CANCELLED, NOT_DELIVERED)


class ShellOperator:
    """Whoever runs manage.py without ``--user``: they hold the database already, so they may run anywhere.

    Passes every permission check (``is_superuser`` for django-guardian, ``has_perm`` for the rest) and is
    recorded as no one, as relay_exec's single commands always were.
    """

    pk = None
    username = "manage.py"
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = True
    relay = None

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return True


def acting_user(username: str | None):
    """The user relay_exec acts as, with their permissions: ``--as``/``--user``'s, else the operator the OS
    user is mapped to (``RELAYHUB_OS_USER_MAP``), else the shell operator."""
    how = ""
    if not username:
        username = settings.RELAYHUB["OS_USER_MAP"].get(trail.os_user())
        if not username:
            return ShellOperator()
        how = f" (RELAYHUB_OS_USER_MAP maps the OS user {trail.os_user()!r} to it)"
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise LookupError(f"no active user named {username!r}{how}")
    return user


def packages_from(values: list[str]) -> dict:
    """The package command of relay_exec's ``--package ACTION:NAME`` flags; ValueError with the flag's problem."""
    pairs = [value.partition(":") for value in values]
    actions = {action for action, _, _ in pairs}
    if any(not colon or not name for _, colon, name in pairs):
        raise ValueError("--package takes ACTION:NAME, e.g. install:nginx or upgrade:openssl=3.0.15-1")
    if len(actions) != 1:
        raise ValueError("every --package of one command takes the same action (install, remove or upgrade)")
    return {"kind": "update_package", "package_action": actions.pop(), "packages": [name for _, _, name in pairs]}


def run_options_from(cwd: str | None, env: list[str], run_as: str | None, script: str | None,
                     interpreter: str | None) -> dict:
    """The run options of relay_exec's flags; ValueError with the flag's problem."""
    options: dict = {}
    if cwd:
        options["working_directory"] = cwd
    if env:
        pairs = [item.partition("=") for item in env]
        if bad := [name for name, equals, _ in pairs if not equals]:
            raise ValueError(f"--env takes NAME=VALUE, not {bad[0]!r}")
        options["environment"] = {name: value for name, _, value in pairs}
    if run_as:
        options["run_as"] = run_as
    if script:
        path = Path(script)
        try:
            options["script"] = sys.stdin.read() if script == "-" else path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--script {script}: {exc}") from None
        options["script_name"] = "stdin" if script == "-" else re.sub(r"[^A-Za-z0-9._+-]", "_", path.name)[:100]
    if interpreter:
        if not script:
            raise ValueError("--interpreter goes with --script")
        options["interpreter"] = interpreter
    return options


def recorded_creator(user):
    return None if isinstance(user, ShellOperator) else user


def messages(exc: exceptions.APIException) -> list[str]:
    """A REST framework error's messages, flat, each with the field it is about."""
    found: list[str] = []

    def walk(detail: object, where: str) -> None:
        if isinstance(detail, dict):
            for key, value in detail.items():
                walk(value, "" if key == "non_field_errors" else key)
        elif isinstance(detail, list):
            for value in detail:
                walk(value, where)
        else:
            found.append(f"{where}: {detail}" if where else str(detail))

    walk(exc.detail, "")
    return found


def outcome(target: batches.Target) -> str | None:
    """How a target ended, or None while it has not."""
    if target.status not in CommandStatus.terminal():
        return None
    command = target.command
    if command is None or target.status == CommandStatus.CANCELLED:
        return CANCELLED  # never dispatched (the batch stopped), or cancelled
    if batches.is_undelivered(command):
        return NOT_DELIVERED
    if target.status == CommandStatus.TIMEOUT:
        return TIMED_OUT
    return FAILED if batches.is_error(command) else COMPLETED


def label(target: batches.Target) -> str:
    return target.name or target.machine_id


def describe(target: batches.Target) -> str:
    """Why a target did not complete, in a few words."""
    command = target.command
    if command is None:
        return "never dispatched: the batch stopped"
    parts = [f"exit code {command.exit_code}"] if command.exit_code not in (0, None) else []
    if command.error:
        parts.append(command.error)
    return "; ".join(parts) or command.status


def summary(items: list[batches.Target]) -> list[str]:
    """``20 targets: 18 completed, 1 failed, 1 not delivered``, then one line per target that did not complete."""
    outcomes = [(item, outcome(item) or "unfinished") for item in items]
    counted = {name: sum(1 for _, got in outcomes if got == name) for name in (*OUTCOMES, "unfinished")}
    noun = "target" if len(items) == 1 else "targets"
    lines = [f"{len(items)} {noun}: " + ", ".join(f"{count} {name}" for name, count in counted.items() if count)]
    lines += [f"  {label(item)}: {got}: {describe(item)}" for item, got in outcomes if got != COMPLETED]
    return lines


def exit_code(items: list[batches.Target]) -> int:
    got = {outcome(item) for item in items}
    if got <= {COMPLETED}:
        return EXIT_OK
    if got & {FAILED, TIMED_OUT, CANCELLED, None}:
        return EXIT_FAILED
    return EXIT_UNDELIVERED


@dataclass
class _Stream:
    offset: int = 0
    partial: str = ""


@dataclass
class BatchFollower:
    """Prints every copy's output as it arrives, each line prefixed ``name | ``; stderr lines to ``err``."""

    batch_id: int
    out: TextIO
    err: TextIO
    poll_s: float = POLL_S
    streams: dict[tuple[int, str], _Stream] = field(default_factory=dict)
    reported: set[int] = field(default_factory=set)
    width: int = 0

    def run(self) -> list[batches.Target]:
        """Until every target has ended and its output is printed; returns the targets as they ended."""
        while True:
            batch = CommandBatch.objects.get(pk=self.batch_id)
            items = batches.targets(batch)
            self.width = self.width or max((len(label(item)) for item in items), default=0)
            for item in items:
                self._print_new(item)
            if batches.overall_status(batch, items) != "running":
                return items
            time.sleep(self.poll_s)

    def _print_new(self, item: batches.Target) -> None:
        command = item.command
        if command is None:
            return
        sinks = {Stream.STDOUT: self.out, Stream.STDERR: self.err}
        for stream, sink in sinks.items():
            state = self.streams.setdefault((item.index, stream), _Stream())
            text, state.offset = output.since(command, stream, state.offset)
            lines = (state.partial + text).split("\n")
            state.partial = lines.pop()
            if command.is_terminal and state.partial:
                lines.append(state.partial)  # the last line, without its newline
                state.partial = ""
            self._write(sink, item, lines)
        got = outcome(item)
        if got is not None and item.index not in self.reported:
            self.reported.add(item.index)
            if got != COMPLETED:
                self._write(self.err, item, [f"[{got}: {describe(item)}]"])

    def _write(self, sink: TextIO, item: batches.Target, lines: Iterable[str]) -> None:
        prefix = f"{label(item):<{self.width}} | "
        text = "".join(f"{prefix}{line}\n" for line in lines)
        if text:
            sink.write(text)
            sink.flush()
