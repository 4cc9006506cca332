"""Helpers for the fleet end-to-end tests: OpenSSH servers listening on several ports, the operator API."""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from django.contrib.auth.models import User

from configpush.models import ConfigPush
from credentials.models import SharedCredential
from credentials.pushes import queue_credential_pushes
from relayhub.web import operator_tokens
from tests.agent.sshd import SSHDUnavailable, find_sshd
from tests.e2e.processes import free_port, wait_for

MAX_LISTEN = 16  # sshd's limit of ListenAddress lines per process


@dataclass
class MultiPortSSHD:
    """One sshd process listening on several ports of 127.0.0.1, with its own host key."""

    ports: list[int]
    host_key: str  # "ssh-ed25519 AAAA..."
    host_pub: Path
    dir: Path
    process: subprocess.Popen

    @property
    def log(self) -> str:
        return (self.dir / "sshd.log").read_text(errors="replace")


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-e2e", "-f", str(path)], check=True)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def keygen_fingerprint(pub: Path) -> str:
    """The SHA256 fingerprint as `ssh-keygen -lf` prints it."""
    line = subprocess.run(["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True, text=True).stdout
    return line.split()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


@contextlib.contextmanager
def run_multiport_sshd(base: Path, count: int, authorized_key: str) -> Iterator[MultiPortSSHD]:
    """sshd -D on ``count`` free ports of 127.0.0.1, accepting ``authorized_key`` for the current user."""
    assert 1 <= count <= MAX_LISTEN
    sshd = find_sshd()
    base.mkdir(parents=True, exist_ok=True)
    host_key = keygen(base / "host_ed25519")
    (base / "authorized_keys").write_text(authorized_key + "\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    for _attempt in range(5):
        ports = []
        while len(ports) < count:  # distinct, even if the kernel hands one out twice
            if (port := free_port()) not in ports:
                ports.append(port)
        (base / "sshd_config").write_text("\n".join([
            *(f"ListenAddress 127.0.0.1:{port}" for port in ports),
            f"HostKey {base / 'host_ed25519'}",
            f"PidFile {base / 'sshd.pid'}",
            f"AuthorizedKeysFile {base / 'authorized_keys'}",
            "StrictModes no", "UsePAM no", "PermitRootLogin yes", "PubkeyAuthentication yes",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "MaxSessions 64", "MaxStartups 100", "LogLevel INFO", "SetEnv SHLVL=5", ""]))
        with open(base / "sshd.log", "ab") as log:
            process = subprocess.Popen([sshd, "-D", "-e", "-f", str(base / "sshd_config")], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None and not all(map(_answers, ports)):
            time.sleep(0.05)
        if process.poll() is None and all(map(_answers, ports)):
            break
        process.kill()
        process.wait()
    else:
        raise SSHDUnavailable(f"sshd did not start: {(base / 'sshd.log').read_text()[-2000:]}")
    try:
        yield MultiPortSSHD(ports, host_key, base / "host_ed25519.pub", base, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def operator_api(hub_url: str, username: str = "fleet-op") -> Api:
    user = User.objects.create_superuser(username, f"{username}@example.com", "pw-fleet-123456")
    return Api(hub_url, operator_tokens.issue(user))


class Api:
    """The hub's operator REST API over HTTP, as a script would use it."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, **kwargs)

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.session.post(self.base + path, json=body or {}, timeout=40)

    def create_target(self, **fields) -> dict:
        fields["relays"] = [str(relay) for relay in fields["relays"]]
        response = self.post("/api/v1/targets/", fields)
        assert response.status_code == 201, response.text
        return response.json()

    def finished_batch(self, batch_id: int, timeout: float = 60) -> dict:
        """Poll the batch (bounded) until it is no longer running, and return it."""
        def done() -> dict | None:
            body = self.get(f"/api/v1/batches/{batch_id}/").json()
            return body if body["status"] != "running" else None

        return wait_for(done, timeout, f"batch {batch_id} to finish", interval=0.2)


def share_ssh_key(relay, private_key: str, target_host: str = "127.0.0.1") -> SharedCredential:
    """A shared ssh_key credential bound to ``target_host`` (any port), assigned and pushed to the relay."""
    credential = SharedCredential(name="fleet-key", credential_type="ssh_key", target_host=target_host)
    credential.set_value(private_key)
    credential.save()
    credential.assigned_relays.add(relay)
    queue_credential_pushes(credential)
    return credential


def all_acked(relay) -> bool:
    return not ConfigPush.objects.filter(relay=relay).exclude(status="acked").exists()


def current_user() -> str:
    return getpass.getuser()
