"""Replaying the credential theft against the real hub and the real relay-agent (SPEC §7 Credentials are bound).

The attack: shared credentials are assigned to a relay, one bound to `db.internal`, one bound to
nothing; the attacker pins its own SSH server through an `ssh_targets` push and queues an SSH
command to it as root. The agent used to offer every unbound credential to whatever host a
command named. The attacker's server here records every authentication attempt it receives.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from relay_agent.store import CredentialStore

from commands.models import Command
from configpush.models import ConfigPush
from credentials.models import SharedCredential
from credentials.pushes import queue_credential_pushes
from tests.agent.sshd import SSHServer
from tests.e2e.processes import finished, wait_for

FAST = ("--long-poll-wait", "500")
DB_PASSWORD = f"db-password-SENTINEL-{uuid.uuid4().hex}"
UNBOUND_PASSWORD = f"unbound-password-SENTINEL-{uuid.uuid4().hex}"


class _RecordingServer(paramiko.ServerInterface):
    """Accepts no one, and writes down every credential a client offers."""

    def __init__(self, seen: list[tuple]) -> None:
        self.seen = seen

    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey,keyboard-interactive"

    def check_auth_none(self, username: str) -> int:
        self.seen.append(("none", username))
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        self.seen.append(("password", username, password))
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.seen.append(("publickey", username, key.get_base64()))
        return paramiko.AUTH_FAILED

    def check_auth_interactive(self, username: str, submethods: str) -> int:
        self.seen.append(("keyboard-interactive", username))
        return paramiko.AUTH_FAILED


class AttackerSSHD:
    """An SSH server on 127.0.0.1 that records connections and every authentication attempt."""

    def __init__(self, workdir: Path) -> None:
        key_path = workdir / "attacker_host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True)
        self.key = paramiko.Ed25519Key(filename=str(key_path))
        self.host_key = f"{self.key.get_name()} {self.key.get_base64()}"
        self.connections: list[tuple[str, int]] = []
        self.attempts: list[tuple] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()
        self._transports: list[paramiko.Transport] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, address = self._listener.accept()
            except TimeoutError:
                continue
            self.connections.append(address)
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.key)
            self._transports.append(transport)
            try:
                transport.start_server(server=_RecordingServer(self.attempts))
            except (paramiko.SSHException, EOFError, OSError):
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for transport in self._transports:
            transport.close()


@pytest.fixture
def attacker_sshd(tmp_path: Path) -> Iterator[AttackerSSHD]:
    server = AttackerSSHD(tmp_path)
    yield server
    server.close()



def share(relay, name: str, kind: str, value: str, target_host: str = "") -> SharedCredential:
    """A shared credential assigned to the relay and pushed to it, as the admin and API do."""
    credential = SharedCredential(name=name, credential_type=kind, target_host=target_host)
    credential.set_value(value)
    credential.save()
    credential.assigned_relays.add(relay)
    queue_credential_pushes(credential)
    return credential


def pin(relay, *servers) -> ConfigPush:
    targets = [{"host": s.host, "port": s.port, "hostKey": s.host_key} for s in servers]
    return ConfigPush.objects.create(relay=relay, push_type="ssh_targets", payload={"targets": targets})


def all_acked(relay) -> bool:
    return not ConfigPush.objects.filter(relay=relay).exclude(status="acked").exists()


def ssh_command(server, text: str, username: str) -> Command:
    return finished(Command.objects.create(machine_id="e2e-machine", command=text, target_type="ssh",
                                           target_host=server.host, target_port=server.port,
                                           target_username=username, timeout_ms=10_000), timeout=20)


def test_no_credential_reaches_a_server_it_is_not_bound_to(
    hub, e2e_relay, start_agent, attacker_sshd: AttackerSSHD, sshd: SSHServer, tmp_path: Path
) -> None:
    relay = e2e_relay.relay
    share(relay, "db-password", "password", DB_PASSWORD, target_host="db.internal")
    share(relay, "legacy-unbound", "password", UNBOUND_PASSWORD)
    # On the attacker's address, but bound to another port: the real sshd's.
    share(relay, "sshd-key", "ssh_key", sshd.client_key, target_host=f"{sshd.host}:{sshd.port}")
    pin(relay, attacker_sshd, sshd)
    store = tmp_path / "agent-store"
    agent = start_agent(e2e_relay, hub, *FAST, "--known-hosts", str(tmp_path / "no_known_hosts"), store_dir=store)
    wait_for(lambda: all_acked(relay), 10, "every credential and ssh_targets push to be acked")
    assert [c.name for c in CredentialStore(store).all()] == ["db-password", "legacy-unbound", "sshd-key"]

    command = ssh_command(attacker_sshd, "id", username="root")

    assert command.status == "failed"
    assert command.error.startswith(
        f"ssh authentication failed for root@{attacker_sshd.host}:{attacker_sshd.port}: "
        f"no ssh_key or password credential bound to {attacker_sshd.host}:{attacker_sshd.port} in the store"
    )
    assert attacker_sshd.attempts == [], "no password and no key may be offered to an unbound server"
    assert attacker_sshd.connections == []
    for sentinel in (DB_PASSWORD, UNBOUND_PASSWORD):
        assert sentinel not in hub.output
        assert sentinel not in agent.output
        assert sentinel not in command.error + command.output + command.stderr


def test_a_credential_bound_to_the_host_and_port_authenticates(
    hub, e2e_relay, start_agent, sshd: SSHServer, tmp_path: Path
) -> None:
    relay = e2e_relay.relay
    share(relay, "sshd-key", "ssh_key", sshd.client_key, target_host=f"{sshd.host}:{sshd.port}")
    pin(relay, sshd)
    start_agent(e2e_relay, hub, *FAST, "--known-hosts", str(tmp_path / "no_known_hosts"))
    wait_for(lambda: all_acked(relay), 10, "the credential and ssh_targets pushes to be acked")

    command = ssh_command(sshd, "id -un", username=sshd.user)

    assert (command.status, command.exit_code, command.output) == ("completed", 0, f"{sshd.user}\n")
    assert (sshd.dir / "sshd.log").read_text().count("Accepted publickey") == 1
