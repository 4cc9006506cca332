"""Fixtures for the relay agent tests; none of them need Django."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from relay_agent.agent import Agent, AgentSettings

from .fakehub import FakeHub
from .sshd import SSHDUnavailable, SSHServer, run_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A real OpenSSH server on 127.0.0.1, one per test process (so xdist workers never share one)."""
    try:
        with run_sshd(tmp_path_factory.mktemp("sshd")) as server:
            yield server
    except SSHDUnavailable as exc:
        pytest.skip(f"no sshd: {exc}")


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub() as fake:
        yield fake


@pytest.fixture
def make_agent(store_dir: Path) -> Iterator[Callable[..., Agent]]:
    """Start real Agents in this process against a hub; they are shut down at the end of the test."""
    agents: list[Agent] = []

    def make(hub: FakeHub, start: bool = True, **overrides) -> Agent:
        options = {
            "store_dir": store_dir,
            "long_poll_wait_ms": 500,
            "poll_interval_ms": 100,
            "heartbeat_interval_ms": 5000,
            "busy_heartbeat_ms": 100,
            "shutdown_grace": 5,
            "known_hosts": [],
            **overrides,
        }
        agent = Agent(AgentSettings(api_key=hub.api_key, hub_url=hub.url, **options))
        agents.append(agent)
        if start:
            assert agent.start()
        return agent

    yield make
    for agent in agents:
        stop_agent(agent)


def stop_agent(agent: Agent) -> None:
    """SIGTERM's path, in-process: stop claiming, let commands finish, flush, close. Idempotent."""
    if getattr(agent, "_test_stopped", False):
        return
    agent._test_stopped = True  # type: ignore[attr-defined]
    agent.stop()
    agent.shutdown()
    agent.close()


@pytest.fixture(scope="session")
def relay_agent_bin() -> Path:
    """The installed `relay-agent` console script, next to this interpreter."""
    script = Path(sys.executable).parent / "relay-agent"
    assert script.exists(), f"relay-agent is not installed in {script.parent} (pip install ./relay_agent)"
    return script


@pytest.fixture
def run_cli(relay_agent_bin: Path, store_dir: Path) -> Callable[..., subprocess.CompletedProcess]:
    def run(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(relay_agent_bin), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )

    return run
