"""What the agent says it holds in each `next`: running commands and unacknowledged results, with its session."""

from __future__ import annotations

import threading
from pathlib import Path

from relay_agent.claiming import HOLDING_MAX, Claimer
from relay_agent.hub import HubExtensions
from relay_agent.output import ExecResult
from relay_agent.results import ResultDelivery
from relay_agent.slots import RunningCommand, Slots
from relay_agent.spool import ResultSpool


def claimer(store_dir: Path, slots: int = 4) -> Claimer:
    stopping = threading.Event()
    results = ResultDelivery(None, ResultSpool(store_dir), HubExtensions(), stopping)  # type: ignore[arg-type]
    return Claimer(None, HubExtensions(), Slots(slots), None, results, stopping,  # type: ignore[arg-type]
                   lambda: False, poll_interval_ms=5000, long_poll_wait_ms=25_000)


def test_holding_lists_running_commands_and_results_not_yet_acknowledged(store_dir: Path) -> None:
    agent = claimer(store_dir)
    running, finished = RunningCommand("11", 1), RunningCommand("12", 1)
    agent.slots.take(running)
    agent.results.record(finished, ExecResult(status="completed", exit_code=0))

    holding, session = agent._holding()

    assert sorted(holding) == ["11", "12"]
    assert session == agent.session and len(session) == 32
    agent.results.spool.ack(("12", 1))
    assert agent._holding()[0] == ["11"]


def test_a_finished_command_is_spooled_before_its_slot_is_freed(store_dir: Path) -> None:
    agent = claimer(store_dir)
    running = RunningCommand("21", 1)
    agent.slots.take(running)
    seen: list[list[str]] = []
    record = agent.results.record

    def look_then_record(*args) -> None:  # noqa: ANN002
        seen.append(agent._holding()[0])  # not spooled yet: only its slot can hold it now
        record(*args)

    agent.results.record = look_then_record  # type: ignore[method-assign]
    agent.runner = type("Runner", (), {"execute": lambda self, command, running: ExecResult(status="completed")})()

    agent._execute({"_id": "21"}, running)

    assert seen == [["21"]], "until its result was spooled, the command held its slot"
    assert agent.slots.free() == 4 and agent._holding()[0] == ["21"]


def test_too_much_to_list_sends_no_session(store_dir: Path) -> None:
    agent = claimer(store_dir)
    agent.slots.take(RunningCommand("1", 1))
    for n in range(HOLDING_MAX):
        agent.results.spool.put({"commandId": str(1000 + n), "attempt": 1})

    holding, session = agent._holding()

    assert (holding, session) == (["1"], None)


def test_an_unreadable_spool_sends_no_session(store_dir: Path) -> None:
    agent = claimer(store_dir)
    agent.slots.take(RunningCommand("1", 1))
    agent.results.record(RunningCommand("2", 1), ExecResult(status="completed"))
    agent.results.spool.close()  # its results can no longer be listed

    assert agent._holding() == (["1"], None)
