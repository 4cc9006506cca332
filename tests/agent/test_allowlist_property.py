"""Properties of the allowed_commands policy, over generated commands (hypothesis).

- A command holding shell syntax is never allowed, whatever the entries, and never runs.
- Arguments that match an entry reach the process exactly as they were, locally and over SSH.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_agent.agent import Agent
from relay_agent.allowlist import REFUSED, SHELL_SYNTAX, CommandRefused, authorize, parse_entries
from relay_agent.settings import AgentSettings
from relay_agent.slots import RunningCommand

from .sshd import SSHServer

PRINT_ARGS = "printf '{%s}\\n'"
# Entries that allow printing one to four arguments of any content, and far more besides.
ENTRIES = [PRINT_ARGS + " *" * n for n in range(1, 5)] + ["echo *", "*", "* *", "* * *", "* * * * * *"]
PATTERNS = parse_entries(ENTRIES)

OPERATORS = [";", "&&", "&", "|", "||", "\n", "$(", "`", ">", ">>", "<", "<(", "(", "${", "$"]
FREE_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
# Anything shlex may quote, but none of what the policy refuses outright.
ARGUMENT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters=SHELL_SYNTAX), max_size=12)
ARGUMENTS = st.lists(ARGUMENT, min_size=1, max_size=4)


@st.composite
def attacks(draw: st.DrawFn, marker: str = "/tmp/relay-agent-never-created") -> str:
    """A command with shell syntax: an allowed-looking head, an operator, a payload, in any quoting."""
    head = draw(st.sampled_from(["echo x", "echo", PRINT_ARGS + " a", ""]))
    operator = draw(st.sampled_from(OPERATORS))
    payload = draw(st.sampled_from([f"touch {marker}", f"touch {marker})", f"{marker}", "touch${IFS}" + marker]))
    quote = draw(st.sampled_from(["", '"', "'"]))
    spacing = draw(st.sampled_from(["", " "]))
    return f"{head}{spacing}{quote}{operator}{spacing}{payload}{quote}"


SYNTAX_ANYWHERE = st.builds(lambda a, c, b: a + c + b, FREE_TEXT, st.sampled_from(sorted(SHELL_SYNTAX)), FREE_TEXT)


@settings(max_examples=200)
@given(st.one_of(attacks(), SYNTAX_ANYWHERE))
def test_a_command_with_shell_syntax_is_never_allowed(command: str) -> None:
    try:
        authorize(command, PATTERNS)
    except CommandRefused as refused:
        assert str(refused).startswith(f"{REFUSED}: shell syntax ")
    else:
        raise AssertionError(f"allowed: {command!r}")


@settings(max_examples=200)
@given(ARGUMENTS)
def test_matching_arguments_are_allowed_exactly_as_written(arguments: list[str]) -> None:
    argv = [*shlex.split(PRINT_ARGS), *arguments]

    assert authorize(shlex.join(argv), PATTERNS) == argv


@contextlib.contextmanager
def agent_in(store_dir: Path) -> Iterator[Agent]:
    agent = Agent(AgentSettings(api_key="rly_unused", hub_url="http://127.0.0.1:9", store_dir=store_dir))
    try:
        agent.config.apply("allowed_commands", {"commands": ENTRIES})
        yield agent
    finally:
        agent.ssh.close()
        agent.close()


def printed(output: str) -> list[str]:
    lines = output.split("\n")
    assert lines[-1] == "" and all(line[:1] == "{" and line[-1:] == "}" for line in lines[:-1]), output
    return [line[1:-1] for line in lines[:-1]]


SPAWNING = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_a_command_with_shell_syntax_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "created"

    with agent_in(tmp_path / "store") as agent:

        @SPAWNING
        @given(attacks(marker=str(marker)))
        def check(command: str) -> None:
            result = agent.execute({"command": command, "timeoutMs": 5000}, RunningCommand("c-1", None))

            assert result.status == "failed" and result.error.startswith(REFUSED), command
            assert not marker.exists(), command

        check()


def test_matching_arguments_reach_a_local_process_unchanged(tmp_path: Path) -> None:
    with agent_in(tmp_path / "store") as agent:

        @SPAWNING
        @given(ARGUMENTS)
        def check(arguments: list[str]) -> None:
            command = shlex.join([*shlex.split(PRINT_ARGS), *arguments])
            result = agent.execute({"command": command, "timeoutMs": 5000}, RunningCommand("c-1", None))

            assert (result.status, result.error) == ("completed", None)
            assert printed(result.output) == arguments

        check()


def test_matching_arguments_reach_a_remote_process_unchanged(tmp_path: Path, sshd: SSHServer) -> None:
    target = {"targetType": "ssh", "targetHost": sshd.host, "targetPort": sshd.port, "targetUsername": sshd.user}
    with agent_in(tmp_path / "store") as agent:
        agent.store.put("sshd-key", "ssh_key", sshd.client_key, target_host=f"{sshd.host}:{sshd.port}")
        agent.config.apply("ssh_targets", {"targets": [{"host": sshd.host, "port": sshd.port,
                                                        "hostKey": sshd.host_key}]})

        @SPAWNING
        @given(ARGUMENTS)
        def check(arguments: list[str]) -> None:
            command = shlex.join([*shlex.split(PRINT_ARGS), *arguments])
            result = agent.execute({**target, "command": command, "timeoutMs": 10_000}, RunningCommand("c-1", None))

            assert (result.status, result.error) == ("completed", None)
            assert printed(result.output) == arguments

        check()
