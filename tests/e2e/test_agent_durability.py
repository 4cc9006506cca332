"""Results outlive a hub outage and an agent restart in the agent's spool (SPEC §6 durability, §8).

Each test stops or kills the real hub while the real agent runs a command, then starts a new hub process
on the same port and database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from relay_agent.spool import ResultSpool

from commands import output
from commands.models import Command
from tests.e2e.processes import Hub, wait_for

FAST = ("--long-poll-wait", "500")


def finished(command: Command, timeout: float = 30) -> Command:
    wait_for(lambda: Command.objects.get(pk=command.pk).is_terminal, timeout, f"command {command.pk} to finish")
    command.refresh_from_db()
    return command


def executing(command: Command) -> bool:
    return Command.objects.get(pk=command.pk).status == "executing"


def spooled(store: Path) -> int:
    spool = ResultSpool(store)
    try:
        return spool.count()
    finally:
        spool.close()


def take_down(hub: Hub, how: str) -> None:
    if how == "kill -9":
        hub.kill()
    else:
        hub.stop()


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_results_finished_while_the_hub_is_down_arrive_once_it_is_back(
    start_hub, e2e_relay, start_agent, tmp_path: Path, how: str
) -> None:
    hub = start_hub()
    store = tmp_path / "store"
    agent = start_agent(e2e_relay, hub, *FAST, store_dir=store)
    runs = [tmp_path / f"ran-{i}" for i in range(3)]
    commands = [Command.objects.create(machine_id="e2e-machine", command=f"echo run >> {ran}; sleep 1; echo done {i}",
                                       timeout_ms=30_000) for i, ran in enumerate(runs)]
    # The hub records the start before the agent runs anything: wait for the commands' own marks.
    wait_for(lambda: all(ran.exists() for ran in runs), 10, "all three commands to be running")

    take_down(hub, how)
    wait_for(lambda: agent.output.count('event="command finished"') == 3, 10, "the commands to finish")
    wait_for(lambda: "results not delivered, retrying" in agent.output, 10, "a failed delivery")
    assert spooled(store) == 3
    assert all(executing(c) for c in commands)

    start_hub(port=hub.port)

    for i, command in enumerate(commands):
        assert (finished(command).status, command.output, command.exit_code) == ("completed", f"done {i}\n", 0)
    assert [ran.read_text() for ran in runs] == ["run\n"] * 3
    wait_for(lambda: spooled(store) == 0, 10, "the spool to be empty")


def test_spooled_results_survive_an_agent_restart(start_hub, e2e_relay, start_agent, tmp_path: Path) -> None:
    hub = start_hub()
    store = tmp_path / "store"
    first = start_agent(e2e_relay, hub, *FAST, store_dir=store)
    command = Command.objects.create(machine_id="e2e-machine", command="sleep 0.5; echo kept", timeout_ms=30_000)
    # The hub records the start before the agent runs anything: wait until it really runs.
    wait_for(lambda: 'event="command started"' in first.output, 10, "the command to be running")
    hub.kill()
    wait_for(lambda: 'event="command finished"' in first.output, 10, "the command to finish")

    assert first.stop() == 0
    assert "results stay spooled for the next start" in first.output
    assert spooled(store) == 1

    start_agent(e2e_relay, start_hub(port=hub.port), *FAST, store_dir=store)

    assert (finished(command).status, command.output) == ("completed", "kept\n")
    wait_for(lambda: spooled(store) == 0, 10, "the spool to be empty")


def test_a_result_the_hub_will_never_take_is_dropped(hub, e2e_relay, start_agent, tmp_path: Path) -> None:
    store = tmp_path / "store"
    agent = start_agent(e2e_relay, hub, *FAST, store_dir=store)
    command = Command.objects.create(machine_id="e2e-machine", command="sleep 1; echo late", timeout_ms=30_000)
    wait_for(lambda: executing(command), 10, "the command to be executing")

    assert command.expire({"executing"}, "relay lost")  # as the sweeper does

    wait_for(lambda: "result dropped by hub" in agent.output, 10, "the agent to give the result up")
    assert spooled(store) == 0
    command.refresh_from_db()
    assert (command.status, command.error, command.output) == ("timeout", "relay lost", "")


def test_output_streaming_backs_off_while_the_hub_is_down(start_hub, e2e_relay, start_agent) -> None:
    hub = start_hub()
    agent = start_agent(e2e_relay, hub, *FAST)
    command = Command.objects.create(machine_id="e2e-machine", timeout_ms=30_000,
                                     command="for i in $(seq 15); do echo $i; sleep 0.2; done")
    wait_for(lambda: output.read(command, "stdout")[0].startswith("1\n"), 10, "the first chunk on the hub")

    hub.kill()
    wait_for(lambda: 'event="command finished"' in agent.output, 10, "the command to finish")
    start_hub(port=hub.port)

    assert finished(command).output == "".join(f"{i}\n" for i in range(1, 16))
    # The command printed for about 2.8 s while the hub was down: a post every 200 ms would be 14 failures.
    assert 1 <= agent.output.count('event="output streaming failed"') <= 6
