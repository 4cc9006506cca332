"""Fault tests of SPEC §8: hub killed mid-run, agent killed mid-command.

Each command appends a line to a file named by its token, so "ran twice"
shows up as a second line and a lost result as a command that never completed.
"""

from __future__ import annotations

import os
import signal
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from assignments.models import RelayAssignment
from commands.choices import CommandStatus
from commands.models import Command
from commands.tasks import expire_commands
from tests.e2e.processes import Hub, free_port, wait_for

AGENTS = 20
COMMANDS = 1000


def queue(machine_id: str, ran_dir: Path, count: int, timeout_ms: int = 10_000, then: str = "") -> dict[int, str]:
    """Commands that each mark a file when they run, then echo their token (or run ``then``)."""
    tokens = {}
    for _ in range(count):
        token = uuid.uuid4().hex
        command = Command.objects.create(machine_id=machine_id, timeout_ms=timeout_ms,
                                         command=f"echo ran >> {ran_dir / token}; {then or f'echo {token}'}")
        tokens[command.pk] = token
    return tokens


def finished() -> int:
    return Command.objects.filter(status__in=CommandStatus.terminal()).count()


def check_each_ran_at_most_once_and_no_result_was_lost(tokens: dict[int, str], ran_dir: Path) -> None:
    for command in Command.objects.filter(pk__in=tokens):
        ran = ran_dir / tokens[command.pk]
        lines = ran.read_text().splitlines() if ran.exists() else []
        assert len(lines) <= 1, f"command {command.pk} ran {len(lines)} times"
        assert command.is_terminal, f"command {command.pk} is still {command.status}"
        # A claim whose answer died with the hub is handed out again, so every command completes.
        assert command.status == CommandStatus.COMPLETED, (command.pk, command.status, command.error)
        assert lines == ["ran"] and command.output == f"{tokens[command.pk]}\n"


@pytest.mark.skipif("os.environ.get('DATABASE_URL', '').startswith('sqlite') or not os.environ.get('DATABASE_URL')",
                    reason="the 20-agent run is specified against PostgreSQL")
def test_twenty_agents_survive_two_hub_kills_during_a_thousand_commands(transactional_db, start_agent, tmp_path):
    ran_dir = tmp_path / "ran"
    ran_dir.mkdir()
    port = free_port()
    hub = Hub(tmp_path / "hub.log", port=port).start()
    try:
        issued = [RelayAssignment.issue(machine_id="fault-machine", name=f"relay-{n}") for n in range(AGENTS)]
        for key in issued:
            start_agent(key, hub, "--concurrency", "4", "--heartbeat-interval", "2000", wait=False)
        tokens = queue("fault-machine", ran_dir, COMMANDS)
        for kill_at in (COMMANDS // 3, 2 * COMMANDS // 3):
            wait_for(lambda: finished() >= kill_at, 120, f"{kill_at} commands to finish", interval=0.1)
            hub.proc.send_signal(signal.SIGKILL)
            hub.proc.wait(5)
            hub = Hub(tmp_path / "hub.log", port=port).start()
        wait_for(lambda: finished() >= COMMANDS, 180, "every command to end", interval=0.5)
        check_each_ran_at_most_once_and_no_result_was_lost(tokens, ran_dir)
    finally:
        hub.kill()


def test_an_agent_killed_mid_command_leaves_it_timed_out_and_not_rerun(settings, hub, e2e_relay, start_agent,
                                                                        tmp_path):
    settings.RELAYHUB = {**settings.RELAYHUB, "TIMEOUT_GRACE_S": 0}
    ran_dir = tmp_path / "ran"
    ran_dir.mkdir()
    agent = start_agent(e2e_relay, hub)
    # Queued as it is to run: a waiting agent claims a new command within milliseconds.
    [(command_id, token)] = queue("e2e-machine", ran_dir, 1, timeout_ms=3000, then="sleep 10").items()
    # Executing is recorded before the agent spawns anything: wait for the command's own mark.
    wait_for(lambda: (ran_dir / token).exists(), 20, "the command to run")
    os.killpg(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(5)
    command = Command.objects.get(pk=command_id)
    # Within timeout plus one sweep: at the deadline, the next sweep ends it.
    wait_for(lambda: timezone.now() > command.deadline_at + timedelta(milliseconds=50), 10, "the deadline")
    assert expire_commands() == 1
    command.refresh_from_db()
    assert (command.status, command.error, command.attempt) == ("timeout", "execution timed out", 1)
    # A new agent for the same relay does not run it again.
    start_agent(e2e_relay, hub)
    Command.objects.create(machine_id="e2e-machine", command="true", timeout_ms=3000)
    wait_for(lambda: Command.objects.filter(status=CommandStatus.COMPLETED).exists(), 20, "the next command")
    assert (ran_dir / token).read_text() == "ran\n"
    assert Command.objects.get(pk=command_id).attempt == 1
