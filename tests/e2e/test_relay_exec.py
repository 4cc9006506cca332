"""relay_exec against the real hub and agent: streams output, exits with the command's code."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from commands.models import Command
from tests.e2e.processes import ROOT, test_database_url


def relay_exec(*args: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "manage.py", "relay_exec", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_relay_exec_streams_output_and_exits_with_the_code(hub, e2e_relay, start_agent):
    start_agent(e2e_relay, hub)
    proc = relay_exec("e2e-machine", "--timeout", "20", "--", "echo first; sleep 2; echo second; exit 3")
    first_line = proc.stdout.readline()
    seen_at = time.monotonic()
    assert first_line == "first\n"
    running = Command.objects.get()
    assert running.status in ("claimed", "executing"), "output arrived only after the command ended"
    rest, errors = proc.communicate(timeout=30)
    assert proc.returncode == 3, errors
    assert rest == "second\n"
    assert time.monotonic() - seen_at >= 1.0
    assert Command.objects.get().status == "failed"


def test_relay_exec_reports_a_timeout(hub, e2e_relay, start_agent):
    start_agent(e2e_relay, hub)
    proc = relay_exec("e2e-machine", "--timeout", "1", "--", "sleep 30")
    _, errors = proc.communicate(timeout=30)
    assert proc.returncode == 124
    assert "timeout" in errors
    assert Command.objects.get().status == "timeout"


def test_relay_exec_rejects_a_bad_ssh_target(transactional_db):
    proc = relay_exec("m", "--ssh", "a@b@c", "--", "true")
    _, errors = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "--ssh must look like" in errors
    assert not Command.objects.exists()
