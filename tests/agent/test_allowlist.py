"""allowed_commands cannot be bypassed with shell syntax, locally or over SSH (SPEC §7 Allow-lists).

The commands go through Agent.execute, the agent's own path from a claimed command to a process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from relay_agent.agent import Agent
from relay_agent.allowlist import REFUSED, CommandRefused, authorize, parse_entries
from relay_agent.output import ExecResult
from relay_agent.settings import AgentSettings
from relay_agent.slots import RunningCommand

from .sshd import SSHServer
from .test_executor import live_processes_with, unique_sleep

ATTACKS = [
    ("systemctl status x; touch {marker}", "';'"),
    ("systemctl status x && touch {marker}", "'&'"),
    ("systemctl status x & touch {marker}", "'&'"),
    ("systemctl status x | touch {marker}", "'|'"),
    ("systemctl status x || touch {marker}", "'|'"),
    ("systemctl status $(touch {marker})", "'$'"),
    ('systemctl status "$(touch {marker})"', "'$'"),
    ("systemctl status ${{IFS}}x", "'$'"),
    ("systemctl status `touch {marker}`", "'`'"),
    ('systemctl status "`touch {marker}`"', "'`'"),
    ("systemctl status x\ntouch {marker}", "'\\n'"),
    ("systemctl status x > {marker}", "'>'"),
    ("systemctl status x >> {marker}", "'>'"),
    ("systemctl status x < /etc/hostname", "'<'"),
    ("systemctl status <(touch {marker})", "'<'"),
    ("systemctl status (touch {marker})", "'('"),
    ("systemctl status 'x; touch {marker}'", "';'"),  # quoted, and harmless: refused all the same
]


@pytest.mark.parametrize(("attack", "syntax"), ATTACKS)
def test_shell_syntax_is_refused_before_any_matching(attack: str, syntax: str) -> None:
    patterns = parse_entries(["systemctl status *", "*", "* * * *"])

    with pytest.raises(CommandRefused) as refused:
        authorize(attack.format(marker="/tmp/p"), patterns)

    assert str(refused.value) == f"{REFUSED}: shell syntax {syntax} is not allowed"


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("systemctl status 'x", "cannot be split into arguments: no closing quotation"),
        ("systemctl status x\\", "cannot be split into arguments: no escaped character"),
        ("systemctl status a b", "no entry matches"),
        ("systemctl  status", "no entry matches"),
        ("systemctl restart x", "no entry matches"),
    ],
)
def test_other_refusals_say_why(command: str, reason: str) -> None:
    with pytest.raises(CommandRefused, match=f"^{REFUSED}: {reason}$"):
        authorize(command, parse_entries(["systemctl status *"]))


def test_a_star_never_crosses_an_argument_boundary() -> None:
    patterns = parse_entries(["systemctl status *"])

    assert authorize("systemctl status 'a b'", patterns) == ["systemctl", "status", "a b"]
    assert authorize("systemctl status ''", patterns) == ["systemctl", "status", ""]
    with pytest.raises(CommandRefused):
        authorize("systemctl status a b", patterns)
    with pytest.raises(CommandRefused):
        authorize("'systemctl status' x", patterns)


@pytest.fixture
def agent(store_dir: Path) -> Iterator[Agent]:
    agent = Agent(AgentSettings(api_key="rly_unused", hub_url="http://127.0.0.1:9", store_dir=store_dir))
    yield agent
    agent.ssh.close()
    agent.close()


@pytest.fixture(params=["local", "ssh"])
def run(request: pytest.FixtureRequest, agent: Agent):
    """Runs a command text the way the agent runs a claimed one, locally or on the test sshd."""
    command: dict = {}
    if request.param == "ssh":
        sshd: SSHServer = request.getfixturevalue("sshd")
        agent.store.put("sshd-key", "ssh_key", sshd.client_key, target_host=f"{sshd.host}:{sshd.port}")
        agent.config.apply("ssh_targets", {"targets": [{"host": sshd.host, "port": sshd.port,
                                                        "hostKey": sshd.host_key}]})
        command.update(targetType="ssh", targetHost=sshd.host, targetPort=sshd.port, targetUsername=sshd.user)

    def run(text: str, timeout_ms: int = 10_000) -> ExecResult:
        return agent.execute({**command, "command": text, "timeoutMs": timeout_ms}, RunningCommand("c-1", None))

    return run


@pytest.mark.parametrize(("attack", "syntax"), ATTACKS)
def test_an_attack_creates_nothing(agent: Agent, run, tmp_path: Path, attack: str, syntax: str) -> None:
    agent.config.apply("allowed_commands", {"commands": ["echo *", "systemctl status *"]})
    marker = tmp_path / "p"

    result = run(attack.replace("systemctl status", "echo").format(marker=marker))

    assert (result.status, result.exit_code) == ("failed", None)
    assert result.error == f"{REFUSED}: shell syntax {syntax} is not allowed"
    assert not marker.exists()


def test_allowed_arguments_reach_the_process_unchanged_and_no_shell_sees_them(agent: Agent, run) -> None:
    agent.config.apply("allowed_commands", {"commands": ["printf '{%s}\\n' * * * *"]})

    result = run("""printf '{%s}\\n' 'two  words' "it's" ~ *""")

    assert result.error is None
    assert (result.status, result.output) == ("completed", "{two  words}\n{it's}\n{~}\n{*}\n")


def test_an_allowed_command_that_does_not_exist_fails_without_a_shell(agent: Agent, run) -> None:
    agent.config.apply("allowed_commands", {"commands": ["no-such-program-here *"]})

    result = run("no-such-program-here x")

    assert result.status == "failed"
    assert result.output == ""


def test_without_an_allow_list_commands_still_run_through_a_shell(run) -> None:
    result = run("echo one; echo $((1 + 1)) | sed s/2/two/")

    assert (result.status, result.output) == ("completed", "one\ntwo\n")


def test_an_empty_allow_list_runs_nothing(agent: Agent, run, tmp_path: Path) -> None:
    agent.config.apply("allowed_commands", {"commands": []})

    result = run(f"touch {tmp_path / 'p'}")

    assert result.error == f"{REFUSED}: the list is empty"
    assert not (tmp_path / "p").exists()


def test_an_allowed_command_is_still_killed_whole_on_timeout(agent: Agent, run) -> None:
    agent.config.apply("allowed_commands", {"commands": ["sleep *"]})
    length = unique_sleep()

    result = run(f"sleep {length}", timeout_ms=300)

    assert (result.status, result.error) == ("timeout", "execution timed out after 300 ms")
    deadline = time.monotonic() + 3
    while live_processes_with(length) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_processes_with(length) == []
