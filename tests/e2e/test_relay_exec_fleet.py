"""relay_exec over a fleet, against the real hub, the real agent and a real OpenSSH server.

SSH targets all point at one sshd (each has its own name and labels); the agent holds the shared key and
trusts the host key only because the targets pin it. relay_exec runs as a subprocess, as from a shell.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assignments.models import RelayAssignment
from commands.models import Command, CommandBatch
from configpush.models import ConfigPush
from fleet.models import SSHTarget
from tests.agent.sshd import SSHServer
from tests.e2e.processes import Agent, free_port, wait_for
from tests.e2e.test_relay_exec import relay_exec

FAST = ("--long-poll-wait", "500")


class Run:
    """A relay_exec subprocess whose stdout and stderr lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = relay_exec(*args)
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._new: queue.Queue[tuple[str, str]] = queue.Queue()
        self._readers = [threading.Thread(target=self._read, args=(name, getattr(self.proc, name)), daemon=True)
                         for name in self.lines]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream) -> None:
        for line in stream:
            self.lines[name].append(line.rstrip("\n"))
            self._new.put((name, line))

    def wait_for_line(self, name: str, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(re.search(pattern, line) for line in self.lines[name]):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None and self._new.empty():
                raise AssertionError(f"no {name} line matching {pattern!r}: {self.lines}")
            try:
                self._new.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                pass

    def finish(self, timeout: float = 60) -> tuple[int, list[str], list[str]]:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"relay_exec still running after {timeout}s: {self.lines}") from None
        for reader in self._readers:
            reader.join(5)
        return code, self.lines["stdout"], self.lines["stderr"]


@pytest.fixture
def add_target(e2e_relay, sshd: SSHServer) -> Callable[..., SSHTarget]:
    def add(name: str, port: int | None = None, **labels: str) -> SSHTarget:
        target = SSHTarget.objects.create(name=name, host=sshd.host, port=port or sshd.port, username=sshd.user,
                                          host_keys=sshd.host_key, labels=labels)
        target.relays.add(e2e_relay.relay)
        return target

    return add


@pytest.fixture
def fleet_agent(hub, e2e_relay, start_agent, ssh_key, add_target, tmp_path: Path) -> Callable[[], Agent]:
    """Starts the agent once the targets are in place, and waits until it trusts their pinned host key."""

    def start() -> Agent:
        agent = start_agent(e2e_relay, hub, *FAST, "--known-hosts", str(tmp_path / "no_known_hosts"))
        push = ConfigPush.objects.filter(relay=e2e_relay.relay, push_type="ssh_targets").latest("id")
        wait_for(lambda: ConfigPush.objects.get(pk=push.pk).status == "acked", 10, "the ssh_targets push to be acked")
        return agent

    return start


def test_a_selector_runs_on_every_matching_target_with_prefixed_lines(e2e_relay, add_target, fleet_agent) -> None:
    for name, role in (("web-01", "web"), ("web-02", "web"), ("api-1", "api"), ("db-01", "db")):
        add_target(name, env="prod", role=role)
    add_target("web-staging", env="staging", role="web")
    fleet_agent()

    code, out, err = Run("--selector", "env=prod,role in (web,api)", "--max-concurrency", "50%", "--timeout", "20",
                         "--", "echo hello; echo oops >&2").finish()

    assert code == 0, (out, err)
    assert sorted(out) == ["api-1  | hello", "web-01 | hello", "web-02 | hello"]
    assert {"api-1  | oops", "web-01 | oops", "web-02 | oops"} <= set(err)
    assert "3 targets: 3 completed" in err
    batch = CommandBatch.objects.get()
    assert (batch.selector, batch.max_concurrency) == ("env=prod,role in (web,api)", 2)
    assert sorted(batch.commands.values_list("target_name", "status", "exit_code")) == [
        ("api-1", "completed", 0), ("web-01", "completed", 0), ("web-02", "completed", 0)]

    # --relays: the selector picks relays by their labels, and the command runs on their machines.
    RelayAssignment.objects.filter(pk=e2e_relay.relay.pk).update(labels={"site": "lab"})
    code, out, err = Run("--selector", "site=lab", "--relays", "--", "echo local").finish()
    assert (code, out) == (0, ["e2e-machine | local"]), err
    assert "1 target: 1 completed" in err


def test_a_failing_target_fails_the_run_and_is_named(add_target, fleet_agent) -> None:
    for name in ("web-01", "web-02", "web-03"):
        add_target(name, env="prod")
    add_target("web-down", port=free_port(), env="prod")  # nothing listens there
    fleet_agent()

    code, out, err = Run("--target", "web-01", "--target", "web-down", "--target", "web-02", "--target", "web-03",
                         "--timeout", "20", "--", "echo up").finish()

    assert code == 1, (out, err)
    assert sorted(out) == ["web-01   | up", "web-02   | up", "web-03   | up"]
    assert "4 targets: 3 completed, 1 failed" in err
    failed = [line for line in err if line.startswith("  web-down: failed: ")]
    assert failed and "127.0.0.1" in failed[0], err
    assert not [line for line in err if line.startswith("  web-0")]

    # A run that exits non-zero: exit 1, and its exit code in the summary.
    code, out, err = Run("--target", "web-01", "--", "echo bye; exit 4").finish()
    assert (code, out) == (1, ["web-01 | bye"]), err
    assert "1 target: 1 failed" in err and "  web-01: failed: exit code 4" in err


def test_usage_errors_exit_2_with_the_reason(transactional_db) -> None:
    relay = RelayAssignment.issue(machine_id="m1", name="r1").relay
    target = SSHTarget.objects.create(name="web-01", host="127.0.0.1", labels={"env": "prod"})
    target.relays.add(relay)

    code, _, err = Run("--target", "web-01", "--target", "nope", "--", "true").finish(30)
    assert code == 2 and "no SSH target named 'nope'" in "\n".join(err)
    code, _, err = Run("--selector", "env=prod,role in (web", "--", "true").finish(30)
    assert code == 2 and "--selector: selector 'env=prod,role in (web'" in "\n".join(err), err
    code, _, err = Run("--selector", "env=staging", "--", "true").finish(30)
    assert code == 2 and "--selector 'env=staging' matches no enabled SSH target" in "\n".join(err)
    code, _, err = Run("--selector", "env=prod", "--max-errors", "150%", "--", "true").finish(30)
    assert code == 2 and "max_errors" in "\n".join(err)
    code, _, err = Run("m1", "--selector", "env=prod", "--", "true").finish(30)
    assert code == 2 and "not both" in "\n".join(err)
    assert not Command.objects.exists() and not CommandBatch.objects.exists()


def test_no_relay_online_is_said_at_once_and_fails(transactional_db) -> None:
    """Each run is bounded by finish()'s timeout: none of them may wait for a relay in silence."""
    relay = RelayAssignment.issue(machine_id="quiet", name="never started").relay  # enabled, never online
    target = SSHTarget.objects.create(name="web-01", host="127.0.0.1", labels={"env": "prod"})
    target.relays.add(relay)
    code, out, err = Run("nobody", "--", "true").finish(30)
    assert code == 69 and "no enabled relay serves machine 'nobody'" in "\n".join(err), err
    code, out, err = Run("quiet", "--", "true").finish(30)
    assert code == 69, err
    assert "no relay for machine 'quiet' is online; pass --queue-if-offline" in "\n".join(err)
    assert "nothing was queued" in err and not any(line.startswith("queued command") for line in err)
    assert not Command.objects.exists()

    # A batch records the copy as not delivered at once, and says so.
    code, out, err = Run("--selector", "env=prod", "--", "true").finish(30)
    assert code == 69, err
    assert "1 target: 1 not delivered" in err
    assert any(line.startswith("  web-01: not delivered: no enabled relay is online") for line in err), err

    # Asked to queue anyway, it says it waits, and waits until Ctrl-C, which withdraws the command.
    run = Run("quiet", "--queue-if-offline", "--", "true")
    run.wait_for_line("stderr", r"waits for a relay to come online", 30)
    run.proc.send_signal(signal.SIGINT)
    code, out, err = run.finish(30)
    assert code == 130 and not any("Traceback" in line for line in err), "\n".join(err)
    assert Command.objects.get(batch=None).status == "cancelled"
    assert "interrupted: cancelled command" in "\n".join(err)


def test_ctrl_c_cancels_every_copy_without_a_traceback(add_target, fleet_agent) -> None:
    for name in ("web-01", "web-02", "web-03"):
        add_target(name, env="prod")
    fleet_agent()
    run = Run("--selector", "env=prod", "--timeout", "60", "--", "echo started; sleep 60")
    for name in ("web-01", "web-02", "web-03"):
        run.wait_for_line("stdout", rf"^{name} \| started$", 30)

    run.proc.send_signal(signal.SIGINT)
    code, out, err = run.finish(30)

    assert code == 130, err
    assert not any("Traceback" in line for line in out + err), err
    assert any("cancelled 3 running or queued target(s): web-01, web-02, web-03" in line for line in err), err
    wait_for(lambda: set(Command.objects.values_list("status", flat=True)) == {"cancelled"}, 20,
             "every copy to end cancelled")
    assert CommandBatch.objects.get().stopped


def test_ctrl_c_cancels_a_single_running_command(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST)
    run = Run("e2e-machine", "--timeout", "60", "--", "echo started; sleep 60")
    run.wait_for_line("stdout", r"^started$", 30)

    run.proc.send_signal(signal.SIGINT)
    code, out, err = run.finish(30)

    assert code == 130, err
    assert not any("Traceback" in line for line in out + err), err
    command = Command.objects.get()
    assert f"interrupted: cancelled command {command.pk} on e2e-machine" in err
    wait_for(lambda: Command.objects.get().status == "cancelled", 20, "the command to end cancelled")


def test_a_second_ctrl_c_detaches_and_says_how_to_follow(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST)
    # Ignores SIGTERM, so the relay needs its SIGKILL two seconds later: relay_exec is still waiting then.
    run = Run("e2e-machine", "--timeout", "60", "--", "trap '' TERM; echo started; sleep 60")
    run.wait_for_line("stdout", r"^started$", 30)

    run.proc.send_signal(signal.SIGINT)
    run.wait_for_line("stderr", r"^interrupted: cancelled command", 30)
    run.proc.send_signal(signal.SIGINT)
    code, out, err = run.finish(30)

    command = Command.objects.get()
    assert code == 130, err
    assert not any("Traceback" in line for line in out + err), err
    assert any(line.startswith(f"detached: the relay is still stopping command(s) {command.pk};") for line in err), err
    wait_for(lambda: Command.objects.get().status == "cancelled", 20, "the command to end cancelled")


@pytest.mark.parametrize("gap", [0.0, 0.05])
def test_two_ctrl_c_close_together_never_show_a_traceback(hub, e2e_relay, start_agent, gap: float) -> None:
    start_agent(e2e_relay, hub, *FAST)
    run = Run("e2e-machine", "--timeout", "60", "--", "trap '' TERM; echo started; sleep 60")
    run.wait_for_line("stdout", r"^started$", 30)

    run.proc.send_signal(signal.SIGINT)
    time.sleep(gap)
    run.proc.send_signal(signal.SIGINT)  # lands wherever the first left relay_exec (or merges with it)
    code, out, err = run.finish(30)

    command = Command.objects.get()
    assert code == 130, err
    assert not any("Traceback" in line for line in out + err), err
    assert f"interrupted: cancelled command {command.pk} on e2e-machine" in err, err
    assert err[-1].startswith("detached: ") or err[-1] == f"command {command.pk}: cancelled", err
    wait_for(lambda: Command.objects.get().status == "cancelled", 20, "the command to end cancelled")
