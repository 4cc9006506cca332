"""Fault test of issue 20: PostgreSQL restarted (``pg_ctl restart -m fast``) while 20 agents run 2,000 commands
and exec() callers wait on some.

The hub, the agents' work and the exec() callers all use a cluster of this test's own (private_postgres), so
that restarting it disturbs no other test; the callers and the queueing run in a ``manage.py shell`` of their
own against it, and the test reads the outcome with psycopg.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from tests.e2e.private_postgres import PrivatePostgres, binaries
from tests.e2e.processes import Hub, wait_for

ROOT = Path(__file__).resolve().parents[2]
AGENTS = 20
COMMANDS = 2000
EXEC_CALLERS = 10
CALLER_SLEEP_S = 6
pytestmark = pytest.mark.skipif(binaries() is None, reason="a cluster of its own needs root and PostgreSQL's binaries")

QUEUE = """
import json, uuid
from commands.models import Command
tokens = {}
for _ in range(%(count)d):
    token = uuid.uuid4().hex
    command = Command.objects.create(machine_id="fault-machine", timeout_ms=30_000,
                                     command=f"echo ran >> %(ran)s/{token}; echo {token}")
    tokens[command.pk] = token
print(json.dumps(tokens))
"""
CALLERS = """
import json, threading, uuid
from django.db import connection
from commands.execution import exec
answers = {}
def call(n):
    token = uuid.uuid4().hex
    try:
        # Running for a few seconds: the database restarts while its caller waits for it.
        result = exec("fault-machine", f"sleep %(sleep)d; echo {token}", timeout_ms=60_000, claim_timeout_ms=180_000)
        answers[n] = {"token": token, "success": result.success, "output": result.output, "error": result.error}
    except Exception as exc:
        answers[n] = {"token": token, "raised": repr(exc)}
    finally:
        connection.close()
threads = [threading.Thread(target=call, args=(n,)) for n in range(%(count)d)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(answers))
"""
RELAYS = """
import json
from assignments.models import RelayAssignment
keys = [RelayAssignment.issue(machine_id="fault-machine", name=f"relay-{n}") for n in range(%(count)d)]
print(json.dumps([[key.api_key, key.transport_secret] for key in keys]))
"""


def shell(database: PrivatePostgres, code: str, **values) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database.url, "DJANGO_SETTINGS_MODULE": "relayhub.settings"}
    return subprocess.Popen([sys.executable, "manage.py", "shell", "-c", code % values], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def answer(process: subprocess.Popen, timeout: float) -> object:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def database():
    cluster = PrivatePostgres().start()
    env = {**os.environ, "DATABASE_URL": cluster.url}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    yield cluster
    cluster.stop()


def count(database: PrivatePostgres, where: str) -> int:
    try:
        with psycopg.connect(database.url.replace("postgres://", "postgresql://"), connect_timeout=2) as db:
            return db.execute(f"SELECT count(*) FROM commands_command WHERE {where}").fetchone()[0]
    except psycopg.OperationalError:  # restarting
        return -1


def finished(database: PrivatePostgres) -> int:
    return count(database, "status IN ('completed', 'failed', 'timeout', 'cancelled', 'undelivered')")


def queued(database: PrivatePostgres) -> int:
    return count(database, "true")


def test_a_postgres_restart_mid_run_loses_nothing(database, start_agent, tmp_path):
    ran_dir = tmp_path / "ran"
    ran_dir.mkdir()
    hub = Hub(tmp_path / "hub.log", env={"DATABASE_URL": database.url}).start()
    try:
        for api_key, secret in answer(shell(database, RELAYS, count=AGENTS), 120):
            start_agent(SimpleNamespace(api_key=api_key, transport_secret=secret), hub, "--heartbeat-interval",
                        "2000", wait=False)
        tokens = answer(shell(database, QUEUE, count=COMMANDS // 2, ran=ran_dir), 300)
        callers = shell(database, CALLERS, count=EXEC_CALLERS, sleep=CALLER_SLEEP_S)
        wait_for(lambda: count(database, f"status = 'executing' AND command LIKE 'sleep {CALLER_SLEEP_S};%'")
                 == EXEC_CALLERS, 120, "the exec() callers' commands to run", interval=0.1)

        restarted_at = time.monotonic()
        database.restart()
        back_at = time.monotonic()
        tokens |= answer(shell(database, QUEUE, count=COMMANDS // 2, ran=ran_dir), 300)
        wait_for(lambda: finished(database) >= COMMANDS + EXEC_CALLERS, 240, "every command to end", interval=0.5)
        print(f"\nPostgreSQL restarted in {back_at - restarted_at:.1f} s; every command ended "
              f"{time.monotonic() - back_at:.1f} s after it was back")

        answers = answer(callers, 240)
        assert len(answers) == EXEC_CALLERS
        for each in answers.values():
            assert each.get("success") and each["output"] == f"{each['token']}\n", each
        with psycopg.connect(database.url.replace("postgres://", "postgresql://")) as db:
            rows = db.execute("SELECT id, status, output, error FROM commands_command").fetchall()
        outcome = {str(pk): (status, output, error) for pk, status, output, error in rows}
        for pk, token in tokens.items():
            ran = ran_dir / token
            lines = ran.read_text().splitlines() if ran.exists() else []
            assert lines == ["ran"], f"command {pk} ran {len(lines)} times"
            assert outcome[pk] == ("completed", f"{token}\n", ""), (pk, outcome[pk])
    finally:
        hub.kill()
