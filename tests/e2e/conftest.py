from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assignments.models import IssuedKey, RelayAssignment, RelayStatus
from credentials.models import SharedCredential
from tests.agent.sshd import SSHDUnavailable, SSHServer, run_sshd
from tests.e2e.processes import Agent, Hub, wait_for


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def start_hub(transactional_db, tmp_path: Path) -> Iterator[Callable[..., Hub]]:
    hubs: list[Hub] = []

    def start(**kwargs) -> Hub:
        hub = Hub(tmp_path / f"hub-{len(hubs)}.log", **kwargs)
        hubs.append(hub)  # before starting, so a failed start is still stopped
        return hub.start()

    yield start
    for hub in hubs:
        hub.stop()


@pytest.fixture
def hub(start_hub) -> Hub:
    return start_hub()


@pytest.fixture
def e2e_relay(transactional_db) -> IssuedKey:
    return RelayAssignment.issue(machine_id="e2e-machine", name="e2e relay")


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    agents: list[Agent] = []

    def start(issued: IssuedKey, hub: Hub, *args: str, store_dir: Path | None = None, wait: bool = True,
              **kwargs) -> Agent:
        store = store_dir or tmp_path / f"store-{len(agents)}"
        if "--long-poll-wait" not in args:
            # The agent waits out an in-flight long-poll on SIGTERM; keep teardown quick.
            args = (*args, "--long-poll-wait", "2000")
        agent = Agent(issued.api_key, hub.url, store, tmp_path / f"agent-{len(agents)}.log", *args,
                      shared_secret=issued.transport_secret, **kwargs).start()
        agents.append(agent)
        if wait:
            wait_for(lambda: _reported(issued.relay, agent), 30, "the agent's first status report")
        return agent

    yield start
    for agent in agents:
        agent.stop()


def _reported(relay: RelayAssignment, agent: Agent) -> bool:
    assert agent.proc.poll() is None, f"agent exited:\n{agent.output}"
    return bool(RelayStatus.objects.get(pk=relay.pk).hostname)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SSHServer]:
    """A real OpenSSH server on 127.0.0.1 for this test, logging each login (``INFO``) to ``sshd.dir / "sshd.log"``."""
    try:
        with run_sshd(tmp_path / "sshd", log_level="INFO") as server:
            yield server
    except SSHDUnavailable as exc:
        pytest.skip(f"no sshd: {exc}")


@pytest.fixture
def ssh_key(e2e_relay, sshd: SSHServer) -> SharedCredential:
    """A shared SSH key for the sshd fixture, bound to its host and assigned to the e2e relay."""
    credential = SharedCredential(name="e2e-ssh-key", credential_type="ssh_key", target_host=sshd.host)
    credential.set_value(sshd.client_key)
    credential.save()
    credential.assigned_relays.add(e2e_relay.relay)
    return credential
