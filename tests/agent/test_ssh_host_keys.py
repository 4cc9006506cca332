"""A host key pinned by the hub never overrides a known_hosts entry that disagrees (SPEC §7 SSH)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from relay_agent.host_keys import HostKeyError, KnownHostsFiles, accepted_keys
from relay_agent.ssh import SSHPool, fingerprint, parse_public_key
from relay_agent.store import CredentialStore

from .sshd import SSHServer


@pytest.fixture
def store(store_dir: Path, sshd: SSHServer) -> CredentialStore:
    store = CredentialStore(store_dir)
    store.put("test-key", "ssh_key", sshd.client_key, target_host=sshd.host)
    return store


def other_host_key(directory: Path) -> str:
    """A fresh ed25519 public key line that no server here presents."""
    path = directory / f"other-{uuid.uuid4().hex}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def pinning(host: str, port: int, key: str):
    return lambda h, p: [key] if (h, p) == (host, port) else []


def test_a_pin_that_disagrees_with_known_hosts_is_refused_and_nothing_runs(
    store: CredentialStore, sshd: SSHServer, tmp_path: Path
) -> None:
    # known_hosts says the host has another key; the hub pins the key this server presents
    # (an impersonating server). The server's key matches the pin, and still nothing may run.
    known_key = other_host_key(tmp_path)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {known_key}\n")
    marker = tmp_path / "ran"
    pool = SSHPool(store, known_hosts=[known_hosts], pinned_keys=pinning(sshd.host, sshd.port, sshd.host_key))

    result = pool.run(sshd.host, sshd.port, sshd.user, f"touch {marker}", timeout_ms=10_000)

    assert result.status == "failed"
    assert result.error == (
        f"pushed host key for {sshd.host}:{sshd.port} disagrees with known_hosts: pinned "
        f"{fingerprint(parse_public_key(sshd.host_key))} is not among the known_hosts keys "
        f"({fingerprint(parse_public_key(known_key))}); refusing to connect"
    )
    assert not marker.exists()
    assert pool.transport_for(sshd.host, sshd.port, sshd.user) is None


def test_a_pin_that_agrees_with_known_hosts_connects(store: CredentialStore, sshd: SSHServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {other_host_key(tmp_path)}\n{sshd.known_hosts_line()}\n")
    pool = SSHPool(store, known_hosts=[known_hosts], pinned_keys=pinning(sshd.host, sshd.port, sshd.host_key))

    assert pool.run(sshd.host, sshd.port, sshd.user, "echo agreed", timeout_ms=10_000).output == "agreed\n"


def test_every_known_hosts_file_counts_and_hashed_names_too(
    store: CredentialStore, sshd: SSHServer, tmp_path: Path
) -> None:
    empty, hashed = tmp_path / "empty_known_hosts", tmp_path / "hashed_known_hosts"
    empty.write_text("")
    hashed.write_text(f"[{sshd.host}]:{sshd.port} {other_host_key(tmp_path)}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(hashed)], check=True, capture_output=True)
    assert f"[{sshd.host}]" not in hashed.read_text()
    pool = SSHPool(store, known_hosts=[empty, hashed], pinned_keys=pinning(sshd.host, sshd.port, sshd.host_key))

    result = pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000)

    assert "disagrees with known_hosts" in result.error


def test_port_22_is_looked_up_under_the_bare_host_name(store: CredentialStore, sshd: SSHServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{sshd.host} {other_host_key(tmp_path)}\n")
    pool = SSHPool(store, known_hosts=[known_hosts], pinned_keys=pinning(sshd.host, 22, sshd.host_key))

    # The disagreement is found before any connection, so nothing needs to listen on port 22.
    result = pool.run(sshd.host, 22, sshd.user, "true", timeout_ms=10_000)

    assert result.error.startswith(f"pushed host key for {sshd.host}:22 disagrees with known_hosts")


def test_an_entry_for_another_port_leaves_the_pin_to_decide(
    store: CredentialStore, sshd: SSHServer, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{sshd.host} {other_host_key(tmp_path)}\n[{sshd.host}]:1 {other_host_key(tmp_path)}\n")
    pool = SSHPool(store, known_hosts=[known_hosts], pinned_keys=pinning(sshd.host, sshd.port, sshd.host_key))

    assert pool.run(sshd.host, sshd.port, sshd.user, "echo pinned", timeout_ms=10_000).output == "pinned\n"


def test_a_pooled_connection_is_dropped_once_known_hosts_disagrees_with_its_pin(
    store: CredentialStore, sshd: SSHServer, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    pool = SSHPool(store, known_hosts=[known_hosts], pinned_keys=pinning(sshd.host, sshd.port, sshd.host_key))
    assert pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000).status == "completed"
    pooled = pool.transport_for(sshd.host, sshd.port, sshd.user)
    marker = tmp_path / "ran"

    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {other_host_key(tmp_path)}\n")
    result = pool.run(sshd.host, sshd.port, sshd.user, f"touch {marker}", timeout_ms=10_000)

    assert "disagrees with known_hosts" in result.error
    assert not marker.exists()
    assert pool.transport_for(sshd.host, sshd.port, sshd.user) is None
    assert not pooled.is_active()


def test_a_pooled_connection_is_dropped_once_its_known_hosts_key_changes(
    store: CredentialStore, sshd: SSHServer, tmp_path: Path
) -> None:
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    pool = SSHPool(store, known_hosts=[known_hosts])
    assert pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000).status == "completed"

    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {other_host_key(tmp_path)}\n")
    result = pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000)

    assert "host key mismatch" in result.error


@pytest.fixture
def keys(tmp_path: Path) -> list[str]:
    return [other_host_key(tmp_path) for _ in range(3)]


def decide(tmp_path: Path, known_hosts: str, pins: list[str], host: str = "db.internal", port: int = 22):
    path = tmp_path / "known_hosts"
    path.write_text(known_hosts)
    known = KnownHostsFiles([path]).lookup(host, port)
    return accepted_keys(f"{host}:{port}", [parse_public_key(p) for p in pins], known)


def blobs(accepted) -> list[bytes]:
    return [key.asbytes() for key in accepted[0]]


def test_every_key_of_a_host_counts_even_two_of_one_type(tmp_path: Path, keys: list[str]) -> None:
    accepted = decide(tmp_path, f"db.internal {keys[0]}\ndb.internal,web {keys[1]}\n", [keys[1]])

    assert blobs(accepted) == [parse_public_key(keys[1]).asbytes()]
    assert len(decide(tmp_path, f"db.internal {keys[0]}\ndb.internal {keys[1]}\n", [])[0]) == 2


def test_wildcards_and_negations_follow_openssh(tmp_path: Path, keys: list[str]) -> None:
    text = f"*.internal,!db.internal {keys[0]}\n"

    with pytest.raises(HostKeyError):
        decide(tmp_path, text, [keys[1]], host="web.internal")
    assert blobs(decide(tmp_path, text, [keys[1]])) == [parse_public_key(keys[1]).asbytes()]


def test_an_unreadable_entry_still_names_the_host(tmp_path: Path, keys: list[str]) -> None:
    with pytest.raises(HostKeyError, match=r"known_hosts keys \(unreadable ssh-future key\)"):
        decide(tmp_path, "db.internal ssh-future AAAAB3Nz\n", [keys[0]])


def test_a_revoked_pin_is_refused_and_a_revoked_key_is_never_accepted(tmp_path: Path, keys: list[str]) -> None:
    text = f"@revoked * {keys[0]}\ndb.internal {keys[0]}\ndb.internal {keys[1]}\n"

    with pytest.raises(HostKeyError, match="revoked there"):
        decide(tmp_path, text, [keys[0]], host="other.host")
    assert blobs(decide(tmp_path, text, [])) == [parse_public_key(keys[1]).asbytes()]
    assert blobs(decide(tmp_path, text, [keys[2]], host="other.host")) == [parse_public_key(keys[2]).asbytes()]


def test_cert_authority_lines_and_comments_are_not_entries(tmp_path: Path, keys: list[str]) -> None:
    text = f"# db.internal {keys[0]}\n@cert-authority db.internal {keys[0]}\n\n"

    assert blobs(decide(tmp_path, text, [keys[1]])) == [parse_public_key(keys[1]).asbytes()]
