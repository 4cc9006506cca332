"""SSH probe ("test connection"): a claimed command with "probe": true runs nothing, reports the target as JSON."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from relay_agent.agent import Agent
from relay_agent.output import ExecResult
from relay_agent.settings import AgentSettings
from relay_agent.slots import RunningCommand

from .sshd import SSHServer, run_sshd
from .test_ssh import closed_port, other_host_key

KEYS = {"reachable", "hostKey", "fingerprint", "hostKeyStatus", "login", "error", "rttMs"}


@contextlib.contextmanager
def agent_in(store_dir: Path, known_hosts: list[Path] | None = None) -> Iterator[Agent]:
    settings = AgentSettings(
        api_key="rly_unused", hub_url="http://127.0.0.1:9", store_dir=store_dir, known_hosts=known_hosts or []
    )
    agent = Agent(settings)
    try:
        yield agent
    finally:
        agent.ssh.close()
        agent.close()


@pytest.fixture
def agent(store_dir: Path) -> Iterator[Agent]:
    with agent_in(store_dir) as agent:
        yield agent


@pytest.fixture
def logged_sshd(tmp_path: Path) -> Iterator[SSHServer]:
    """An sshd of this test's own, logging every authentication request (`userauth-request`)."""
    with run_sshd(tmp_path / "logged-sshd", log_level="DEBUG1") as server:
        yield server


def allow(agent: Agent, server: SSHServer, host_key: str | None = None) -> None:
    target = {"host": server.host, "port": server.port, **({"hostKey": host_key} if host_key else {})}
    agent.config.apply("ssh_targets", {"targets": [target]})


def probe(agent: Agent, server: SSHServer, port: int | None = None, command: str = "true", **extra) -> ExecResult:
    body = {
        "_id": "c-probe",
        "probe": True,
        "targetType": "ssh",
        "targetHost": server.host,
        "targetPort": port or server.port,
        "targetUsername": server.user,
        "command": command,
        "timeoutMs": 10_000,
        **extra,
    }
    return agent.execute(body, RunningCommand("c-probe", None))


def report(result: ExecResult) -> dict:
    assert result.status == "completed", result
    assert "\n" not in result.output.strip()
    data = json.loads(result.output)
    assert set(data) == KEYS
    return data


def keygen_fingerprint(server: SSHServer) -> str:
    """What `ssh-keygen -lf` prints for the server's host key, e.g. SHA256:abc... (no padding)."""
    printed = subprocess.run(
        ["ssh-keygen", "-lf", str(server.dir / "host_ed25519.pub")], check=True, capture_output=True, text=True
    ).stdout
    return printed.split()[1]


def auth_requests(server: SSHServer) -> list[str]:
    return [line for line in (server.dir / "sshd.log").read_text().splitlines() if "userauth-request" in line]


def test_a_pinned_key_and_a_valid_credential_log_in(agent: Agent, logged_sshd: SSHServer) -> None:
    agent.store.put("key", "ssh_key", logged_sshd.client_key, target_host=logged_sshd.host)
    allow(agent, logged_sshd, logged_sshd.host_key)

    result = probe(agent, logged_sshd)

    data = report(result)
    assert result.exit_code == 0 and result.success
    assert data["reachable"] is True and data["hostKeyStatus"] == "trusted" and data["login"] is True
    assert data["hostKey"] == logged_sshd.host_key
    assert data["fingerprint"] == keygen_fingerprint(logged_sshd)
    assert data["error"] is None
    assert isinstance(data["rttMs"], int) and 0 <= data["rttMs"] < 10_000
    assert auth_requests(logged_sshd), "the control: a login this sshd sees is logged"
    assert agent.ssh.transport_for(logged_sshd.host, logged_sshd.port, logged_sshd.user) is None, "not pooled"


def test_an_unknown_key_is_reported_and_never_offered_a_credential(agent: Agent, logged_sshd: SSHServer) -> None:
    # This key would log in: were it offered, sshd would log the request (see the test above).
    agent.store.put("key", "ssh_key", logged_sshd.client_key, target_host=logged_sshd.host)
    allow(agent, logged_sshd)

    result = probe(agent, logged_sshd)

    data = report(result)
    assert result.exit_code == 1
    assert data["reachable"] is True and data["hostKeyStatus"] == "unknown" and data["login"] is None
    assert data["hostKey"] == logged_sshd.host_key
    assert data["fingerprint"] == keygen_fingerprint(logged_sshd)
    assert "unknown" in data["error"] and "no login attempted" in data["error"]
    assert auth_requests(logged_sshd) == []


def test_a_wrong_pinned_key_is_a_mismatch_and_never_offered_a_credential(
    agent: Agent, logged_sshd: SSHServer, tmp_path: Path
) -> None:
    agent.store.put("key", "ssh_key", logged_sshd.client_key, target_host=logged_sshd.host)
    allow(agent, logged_sshd, other_host_key(tmp_path))

    data = report(result := probe(agent, logged_sshd))

    assert result.exit_code == 1
    assert data["reachable"] is True and data["hostKeyStatus"] == "mismatch" and data["login"] is None
    assert data["fingerprint"] == keygen_fingerprint(logged_sshd)
    assert "mismatch" in data["error"]
    assert auth_requests(logged_sshd) == []


def test_a_key_revoked_in_known_hosts_is_a_mismatch(store_dir: Path, sshd: SSHServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"@revoked {sshd.known_hosts_line()}\n")
    with agent_in(store_dir, [known_hosts]) as agent:
        agent.store.put("key", "ssh_key", sshd.client_key, target_host=sshd.host)

        data = report(probe(agent, sshd))

    assert data["hostKeyStatus"] == "mismatch" and data["login"] is None
    assert "revoked" in data["error"]


def test_a_key_in_known_hosts_is_trusted(store_dir: Path, sshd: SSHServer, tmp_path: Path) -> None:
    with agent_in(store_dir, [sshd.write_known_hosts(tmp_path / "known_hosts")]) as agent:
        agent.store.put("key", "ssh_key", sshd.client_key, target_host=sshd.host)

        result = probe(agent, sshd)

    assert report(result)["hostKeyStatus"] == "trusted" and result.exit_code == 0


def test_a_wrong_password_for_a_trusted_key_is_a_failed_login(agent: Agent, sshd: SSHServer) -> None:
    agent.store.put("pw", "password", "not-the-password", target_host=f"{sshd.host}:{sshd.port}")
    allow(agent, sshd, sshd.host_key)

    data = report(result := probe(agent, sshd))

    assert result.exit_code == 1
    assert data["hostKeyStatus"] == "trusted" and data["login"] is False
    assert data["error"].startswith(f"ssh authentication failed for {sshd.user}@{sshd.host}:{sshd.port}")
    assert "not-the-password" not in result.output


def test_no_credential_for_a_trusted_key_is_no_login(agent: Agent, sshd: SSHServer) -> None:
    allow(agent, sshd, sshd.host_key)

    data = report(result := probe(agent, sshd))

    assert result.exit_code == 1
    assert data["hostKeyStatus"] == "trusted" and data["login"] is None
    assert "no ssh_key or password credential bound to" in data["error"]


def test_a_closed_port_is_unreachable(agent: Agent, sshd: SSHServer) -> None:
    port = closed_port()
    agent.store.put("key", "ssh_key", sshd.client_key, target_host=sshd.host)

    data = report(result := probe(agent, sshd, port=port))

    assert result.exit_code == 1
    assert data == {
        "reachable": False,
        "hostKey": None,
        "fingerprint": None,
        "hostKeyStatus": None,
        "login": None,
        "error": data["error"],
        "rttMs": None,
    }
    assert data["error"].startswith(f"ssh connection to {sshd.host}:{port} failed") and "refused" in data["error"]


def test_a_probe_to_a_host_outside_ssh_targets_is_refused(agent: Agent, sshd: SSHServer) -> None:
    agent.config.apply("ssh_targets", {"targets": [{"host": "elsewhere.example", "port": 22}]})

    result = probe(agent, sshd)

    assert (result.status, result.exit_code, result.output) == ("failed", None, "")
    assert result.error == f"ssh target {sshd.host}:{sshd.port} not allowed by ssh_targets policy"


def test_a_probe_runs_no_command_and_ignores_allowed_commands(agent: Agent, sshd: SSHServer, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    agent.store.put("key", "ssh_key", sshd.client_key, target_host=sshd.host)
    allow(agent, sshd, sshd.host_key)
    agent.config.apply("allowed_commands", {"commands": ["uptime"]})

    result = probe(agent, sshd, command=f"touch {marker}")

    assert result.exit_code == 0 and report(result)["login"] is True
    assert not marker.exists()


def test_a_probe_must_target_ssh(agent: Agent, tmp_path: Path, sshd: SSHServer) -> None:
    marker = tmp_path / "ran"

    result = probe(agent, sshd, command=f"touch {marker}", targetType="local")

    assert result.status == "failed" and "probe needs targetType 'ssh'" in result.error
    assert not marker.exists()
