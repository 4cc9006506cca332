"""The real relay-agent claims commands from the real hub by long-poll and reports their results (SPEC §6)."""

from __future__ import annotations

import time

from commands.models import Command
from tests.e2e.processes import finished, wait_for

FAST = ("--long-poll-wait", "500")


def test_a_queued_echo_returns_its_output(hub, e2e_relay, start_agent) -> None:
    agent = start_agent(e2e_relay, hub, *FAST)

    command = finished(Command.objects.create(machine_id="e2e-machine", command="echo hello", target_type="local",
                                              timeout_ms=5000))

    assert (command.status, command.output, command.stderr, command.exit_code) == ("completed", "hello\n", "", 0)
    assert (command.error, command.output_truncated, command.attempt) == ("", False, 1)
    assert command.claimed_by == e2e_relay.relay
    assert command.started_at is not None and command.duration_ms is not None
    assert command.claim_session and command.started_at == command.claimed_at, "the claim started it: no `started`"
    assert "hub supports long-poll" in agent.output
    assert "falling back to polling" not in agent.output


def test_a_non_zero_exit_is_a_failure_with_its_code(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST)

    command = finished(Command.objects.create(machine_id="e2e-machine", command="echo partial; echo oops >&2; exit 3",
                                              timeout_ms=5000))

    assert (command.status, command.output, command.stderr, command.exit_code) == ("failed", "partial\n", "oops\n", 3)


def test_a_waiting_long_poll_picks_up_a_new_command_at_once(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, "--long-poll-wait", "3000")
    time.sleep(0.3)  # the agent is now inside a long-poll that lasts 3 s unless a command wakes it
    queued = time.monotonic()

    command = finished(Command.objects.create(machine_id="e2e-machine", command="true", timeout_ms=5000))

    assert command.status == "completed"
    assert time.monotonic() - queued < 1.5


def test_commands_run_in_parallel_up_to_the_concurrency(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST, "--concurrency", "2")

    commands = [Command.objects.create(machine_id="e2e-machine", command="sleep 1", timeout_ms=10_000)
                for _ in range(3)]

    assert [finished(c).status for c in commands] == ["completed"] * 3
    first, second, third = sorted(commands, key=lambda c: c.started_at)
    assert second.started_at < first.completed_at, "the first two ran side by side"
    assert (third.started_at - first.started_at).total_seconds() > 0.5, "the third waited for a free slot"


def test_commands_of_another_machine_are_left_alone(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST)
    other = Command.objects.create(machine_id="other-machine", command="true", timeout_ms=5000)

    mine = finished(Command.objects.create(machine_id="e2e-machine", command="true", timeout_ms=5000))

    assert mine.status == "completed"
    other.refresh_from_db()
    assert (other.status, other.claimed_by) == ("pending", None)


def test_an_agent_with_more_slots_than_one_next_carries_still_claims(hub, e2e_relay, start_agent) -> None:
    # The hub hands out at most 50 commands per `next` and refuses a larger `max`: the agent asks for no more.
    agent = start_agent(e2e_relay, hub, *FAST, "--concurrency", "64")

    commands = [Command.objects.create(machine_id="e2e-machine", command=f"echo {n}", timeout_ms=5000)
                for n in range(3)]

    assert [finished(command).output for command in commands] == ["0\n", "1\n", "2\n"]
    assert "claiming commands failed" not in agent.output


def _most_at_once(commands: list[Command]) -> int:
    """The most commands running together: each from the hub's start to that plus the agent's measured run."""
    from datetime import timedelta

    ends = [(c.started_at + timedelta(milliseconds=c.duration_ms), -1) for c in commands]
    edges = sorted([(c.started_at, 1) for c in commands] + ends, key=lambda edge: (edge[0], edge[1]))
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_by_default_the_slots_grow_while_short_commands_queue(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST)  # no --concurrency: 4 slots, adapting up to 32
    commands = Command.objects.bulk_create(
        [Command(machine_id="e2e-machine", command="sleep 0.3", timeout_ms=20_000) for _ in range(60)])

    done = [finished(c, timeout=60) for c in commands]

    assert {c.status for c in done} == {"completed"}
    assert _most_at_once(done) > 8, "more than twice the floor of 4 ran side by side"


def test_a_fixed_concurrency_does_not_grow(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST, "--concurrency", "4")
    commands = Command.objects.bulk_create(
        [Command(machine_id="e2e-machine", command="sleep 0.2", timeout_ms=20_000) for _ in range(24)])

    done = [finished(c, timeout=60) for c in commands]

    assert _most_at_once(done) <= 4
