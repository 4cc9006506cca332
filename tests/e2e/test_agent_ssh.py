"""The real relay-agent runs SSH commands from the real hub on a real OpenSSH server (SPEC §6, §7 SSH).

The private key reaches the agent only as a hub SharedCredential, encrypted with the relay's transport
secret; the host key is pinned by an `ssh_targets` push.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from commands.models import Command
from configpush.models import ConfigPush
from credentials.models import CredentialInventoryItem
from tests.agent.sshd import SSHServer
from tests.e2e.processes import Agent, wait_for

FAST = ("--long-poll-wait", "500")



@pytest.fixture
def start_ssh_agent(hub, e2e_relay, start_agent, ssh_key, tmp_path: Path) -> Callable[[], Agent]:
    """An agent with the shared key and no known_hosts: only a pushed pin lets it connect."""
    return lambda: start_agent(e2e_relay, hub, *FAST, "--known-hosts", str(tmp_path / "no_known_hosts"))


def pin(relay, sshd: SSHServer, host_key: str) -> ConfigPush:
    return ConfigPush.objects.create(relay=relay, push_type="ssh_targets",
                                     payload={"targets": [{"host": sshd.host, "port": sshd.port, "hostKey": host_key}]})


def acked(push: ConfigPush) -> bool:
    push.refresh_from_db()
    return push.status == "acked"


def run_ssh(sshd: SSHServer, text: str) -> Command:
    command = Command.objects.create(machine_id="e2e-machine", command=text, target_type="ssh",
                                     target_host=sshd.host, target_port=sshd.port, target_username=sshd.user,
                                     timeout_ms=10_000)
    wait_for(lambda: Command.objects.get(pk=command.pk).is_terminal, 20, f"ssh command {command.pk} to finish")
    command.refresh_from_db()
    return command


def logins(sshd: SSHServer) -> int:
    return (sshd.dir / "sshd.log").read_text().count("Accepted publickey")


def test_ssh_commands_run_with_the_shared_key_over_one_connection(e2e_relay, sshd, start_ssh_agent) -> None:
    push = pin(e2e_relay.relay, sshd, sshd.host_key)
    start_ssh_agent()
    wait_for(lambda: acked(push), 5, "the ssh_targets push to be acked")

    commands = [run_ssh(sshd, 'echo "over ssh $SSH_CONNECTION"') for _ in range(3)]

    assert [(c.status, c.exit_code) for c in commands] == [("completed", 0)] * 3
    outputs = [c.output.split() for c in commands]
    assert all(words[:2] == ["over", "ssh"] for words in outputs)
    client_ports = {words[3] for words in outputs}  # SSH_CONNECTION: client ip, client port, server ip, server port
    assert len(client_ports) == 1, f"each command came over a new TCP connection: {client_ports}"
    assert logins(sshd) == 1
    # The agent reports the decrypted key as metadata only.
    item = CredentialInventoryItem.objects.get(relay=e2e_relay.relay, credential_name="e2e-ssh-key")
    assert (item.credential_type, item.storage_mode, item.target_host) == ("ssh_key", "shared", sshd.host)


def test_an_unknown_host_key_is_refused_and_nothing_runs(sshd, start_ssh_agent, tmp_path: Path) -> None:
    start_ssh_agent()
    marker = tmp_path / "ran"

    command = run_ssh(sshd, f"touch {marker}")

    assert command.status == "failed"
    assert f"ssh host key for {sshd.host}:{sshd.port} is unknown" in command.error
    assert "refusing to connect" in command.error
    assert not marker.exists()
    assert logins(sshd) == 0


def test_a_host_key_other_than_the_pinned_one_is_refused(e2e_relay, sshd, start_ssh_agent, tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    push = pin(e2e_relay.relay, sshd, " ".join((tmp_path / "other.pub").read_text().split()[:2]))
    start_ssh_agent()
    wait_for(lambda: acked(push), 5, "the ssh_targets push to be acked")
    marker = tmp_path / "ran"

    command = run_ssh(sshd, f"touch {marker}")

    assert command.status == "failed"
    assert f"ssh host key mismatch for {sshd.host}:{sshd.port}" in command.error
    assert not marker.exists()
    assert logins(sshd) == 0
