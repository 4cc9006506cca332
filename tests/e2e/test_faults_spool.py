"""Fault test of issue 20: the agent's spool directory runs out of space.

The store directory is a 4 MiB tmpfs filled to the last byte. The agent must say so clearly, keep the result
it could not spool (in memory, posted directly), take no new work whose result it could not keep, and resume
by itself once space is back, with no command lost or run twice.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

from commands.choices import CommandStatus
from commands.models import Command
from tests.e2e.processes import wait_for
from tests.e2e.test_faults import check_each_ran_at_most_once_and_no_result_was_lost, queue

COMMANDS = 20


@pytest.fixture
def small_disk(tmp_path: Path):
    where = tmp_path / "store"
    where.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(where)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (65536, 4096, 512, 1):  # down to the last byte
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def completed() -> int:
    return Command.objects.filter(status=CommandStatus.COMPLETED).count()


def test_a_full_spool_disk_pauses_the_agent_which_keeps_its_result_and_resumes(hub, e2e_relay, start_agent,
                                                                                small_disk, tmp_path):
    ran_dir = tmp_path / "ran"
    ran_dir.mkdir()
    agent = start_agent(e2e_relay, hub, "--concurrency", "1", "--long-poll-wait", "500", store_dir=small_disk)
    filler = fill(small_disk)
    tokens = queue("e2e-machine", ran_dir, COMMANDS)

    wait_for(lambda: "result spool cannot be written" in agent.output, 30, "the agent to report the full disk")
    wait_for(lambda: completed() >= 1, 30, "the result it could not spool to reach the hub all the same")
    time.sleep(3)
    assert completed() <= 2, "no new work is taken while a result could not be kept"
    assert Command.objects.filter(status=CommandStatus.PENDING).count() >= COMMANDS - 2

    filler.unlink()
    wait_for(lambda: "result spool writable again" in agent.output, 30, "the agent to notice the space is back")
    wait_for(lambda: completed() == COMMANDS, 60, "every command to end")
    check_each_ran_at_most_once_and_no_result_was_lost(tokens, ran_dir)
    assert agent.proc.poll() is None, "the agent resumed by itself"
    line = next(line for line in agent.output.splitlines() if "result spool cannot be written" in line)
    assert "level=error" in line and "disk is full" in line and str(small_disk) in line, line
