"""The real relay-agent kills a command's whole process group on timeout and on a cancel from the real hub."""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands import output
from commands.models import Command
from tests.e2e.processes import finished, wait_for

FAST = ("--long-poll-wait", "500")
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(autouse=True)
def reaper() -> Iterator[None]:
    """Orphans of the killed commands are re-parented to this test process, which reaps them.

    A zombie still answers os.killpg(pgid, 0), and PID 1 of a container reaps late (here, every two
    seconds or so) or never.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def group_gone(pgid: int) -> bool:
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.getpgid(int(entry)) == pgid:
                os.waitpid(int(entry), os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def running_group(pid_file: Path) -> int:
    """The command's process group: the shell's pid, as the agent starts each command in a new session."""
    wait_for(lambda: pid_file.exists() and pid_file.read_text().endswith("\n"), 10, "the command to start")
    return int(pid_file.read_text().split()[0])


def test_a_timeout_kills_the_process_group(hub, e2e_relay, start_agent, tmp_path: Path) -> None:
    start_agent(e2e_relay, hub, *FAST)
    pid_file = tmp_path / "pgid"
    started = time.monotonic()

    command = Command.objects.create(machine_id="e2e-machine", command=f"sleep 30 & echo $$ $! > {pid_file}; sleep 30",
                                     timeout_ms=1000)
    pgid = running_group(pid_file)

    assert finished(command).status == "timeout"
    assert command.error == "execution timed out after 1000 ms"
    assert command.exit_code is None
    assert time.monotonic() - started < 10
    wait_for(lambda: group_gone(pgid), 5, f"process group {pgid} to be gone")


def test_a_cancel_kills_a_silent_command(hub, e2e_relay, start_agent, tmp_path: Path) -> None:
    # Nothing is printed, so the cancel can only arrive with a heartbeat answer.
    start_agent(e2e_relay, hub, *FAST, "--heartbeat-interval", "500")
    pid_file = tmp_path / "pgid"
    command = Command.objects.create(machine_id="e2e-machine", command=f"sleep 30 & echo $$ > {pid_file}; wait",
                                     timeout_ms=60_000)
    pgid = running_group(pid_file)
    wait_for(lambda: Command.objects.get(pk=command.pk).status == "executing", 5, "the command to be executing")
    assert not group_gone(pgid)

    command.cancel()

    assert finished(command, timeout=10).status == "cancelled"
    assert command.error == "command cancelled"
    wait_for(lambda: group_gone(pgid), 5, f"process group {pgid} to be gone")


def test_a_cancel_kills_a_command_that_prints(hub, e2e_relay, start_agent, tmp_path: Path) -> None:
    start_agent(e2e_relay, hub, *FAST, "--heartbeat-interval", "60000")
    pid_file = tmp_path / "pgid"
    command = Command.objects.create(
        machine_id="e2e-machine", command=f"echo $$ > {pid_file}; while true; do echo tick; sleep 0.1; done",
        timeout_ms=60_000)
    pgid = running_group(pid_file)
    wait_for(lambda: output.read(command, "stdout")[0].startswith("tick\n"), 10, "output on the hub")
    assert not group_gone(pgid)

    command.cancel()

    assert finished(command, timeout=10).status == "cancelled"
    assert command.output.startswith("tick\n")
    wait_for(lambda: group_gone(pgid), 5, f"process group {pgid} to be gone")
