from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from relay_agent.output import skip_marker
from relay_agent.ssh import SSHPool
from relay_agent.store import CredentialStore

from .sshd import SSHServer
from .test_executor import live_processes_with, unique_sleep


@pytest.fixture
def store(store_dir: Path, sshd: SSHServer) -> CredentialStore:
    store = CredentialStore(store_dir)
    store.put("test-key", "ssh_key", sshd.client_key, target_host=sshd.host)
    return store


@pytest.fixture
def pool(store: CredentialStore, sshd: SSHServer):
    pool = SSHPool(
        store, pinned_keys=lambda host, port: [sshd.host_key] if (host, port) == (sshd.host, sshd.port) else []
    )
    yield pool
    pool.close()


def other_host_key(tmp_path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    return " ".join((tmp_path / "other.pub").read_text().split()[:2])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_runs_a_command_on_a_host_with_a_pinned_key(pool: SSHPool, sshd: SSHServer) -> None:
    result = pool.run(sshd.host, sshd.port, sshd.user, "echo hello; echo oops >&2; exit 4", timeout_ms=10_000)

    assert result.status == "failed"
    assert result.exit_code == 4
    assert result.output == "hello\n"
    assert result.stderr == "oops\n", "the process-group line must not leak into stderr"


def test_consecutive_commands_reuse_one_connection(pool: SSHPool, sshd: SSHServer) -> None:
    first = pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000)
    transport = pool.transport_for(sshd.host, sshd.port, sshd.user)
    second = pool.run(sshd.host, sshd.port, sshd.user, "echo again", timeout_ms=10_000)

    assert first.status == second.status == "completed"
    assert transport is not None
    assert pool.transport_for(sshd.host, sshd.port, sshd.user) is transport


def test_the_socket_has_tcp_nodelay(pool: SSHPool, sshd: SSHServer) -> None:
    pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000)

    sock = pool.transport_for(sshd.host, sshd.port, sshd.user).sock
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_a_dead_connection_is_replaced(pool: SSHPool, sshd: SSHServer) -> None:
    pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000)
    dead = pool.transport_for(sshd.host, sshd.port, sshd.user)
    dead.close()

    result = pool.run(sshd.host, sshd.port, sshd.user, "echo ok", timeout_ms=10_000)

    assert result.output == "ok\n"
    assert pool.transport_for(sshd.host, sshd.port, sshd.user) is not dead


def test_idle_connections_are_closed(store: CredentialStore, sshd: SSHServer) -> None:
    pool = SSHPool(store, pinned_keys=lambda h, p: [sshd.host_key], idle_timeout=0.2)
    pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000)
    transport = pool.transport_for(sshd.host, sshd.port, sshd.user)

    assert pool.reap_idle() == 0 or transport is None
    time.sleep(0.3)
    assert pool.reap_idle() == 1
    assert not transport.is_active()
    assert pool.transport_for(sshd.host, sshd.port, sshd.user) is None


def test_an_unknown_host_key_is_refused_and_nothing_runs(
    store: CredentialStore, sshd: SSHServer, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    pool = SSHPool(store)

    result = pool.run(sshd.host, sshd.port, sshd.user, f"touch {marker}", timeout_ms=10_000)

    assert result.status == "failed"
    assert "host key" in result.error and "unknown" in result.error
    assert "SHA256:" in result.error
    assert not marker.exists()
    assert pool.transport_for(sshd.host, sshd.port, sshd.user) is None


def test_a_mismatched_pinned_key_is_refused_and_nothing_runs(
    store: CredentialStore, sshd: SSHServer, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    wrong = other_host_key(tmp_path)
    pool = SSHPool(store, pinned_keys=lambda h, p: [wrong])

    result = pool.run(sshd.host, sshd.port, sshd.user, f"touch {marker}", timeout_ms=10_000)

    assert result.status == "failed"
    assert "host key mismatch" in result.error
    assert not marker.exists()


def test_a_known_hosts_file_is_honoured(store: CredentialStore, sshd: SSHServer, tmp_path: Path) -> None:
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")

    result = SSHPool(store, known_hosts=[known_hosts]).run(
        sshd.host, sshd.port, sshd.user, "echo ok", timeout_ms=10_000
    )

    assert result.output == "ok\n"


def test_a_wrong_key_in_known_hosts_is_refused(store: CredentialStore, sshd: SSHServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {other_host_key(tmp_path)}\n")

    result = SSHPool(store, known_hosts=[known_hosts]).run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000)

    assert "host key mismatch" in result.error


def test_a_corrected_known_hosts_file_is_read_again(store: CredentialStore, sshd: SSHServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {other_host_key(tmp_path)}\n")
    pool = SSHPool(store, known_hosts=[known_hosts])
    assert "host key mismatch" in pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000).error

    sshd.write_known_hosts(known_hosts)

    assert pool.run(sshd.host, sshd.port, sshd.user, "echo ok", timeout_ms=10_000).output == "ok\n"


def test_a_pin_pushed_later_applies_to_a_pooled_connection(
    store: CredentialStore, sshd: SSHServer, tmp_path: Path
) -> None:
    pins = [sshd.host_key]
    pool = SSHPool(store, pinned_keys=lambda h, p: pins)
    assert pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000).status == "completed"

    pins[:] = [other_host_key(tmp_path)]
    result = pool.run(sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000)

    assert "host key mismatch" in result.error


def test_bad_credentials_are_an_authentication_error(store_dir: Path, sshd: SSHServer, tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")], check=True)
    store = CredentialStore(store_dir)
    store.put("stranger", "ssh_key", (tmp_path / "stranger").read_text(), target_host=sshd.host)
    store.put("bad-password", "password", "not-the-password", target_host=f"{sshd.host}:{sshd.port}")
    marker = tmp_path / "ran"

    result = SSHPool(store, pinned_keys=lambda h, p: [sshd.host_key]).run(
        sshd.host, sshd.port, sshd.user, f"touch {marker}", timeout_ms=10_000
    )

    assert result.status == "failed"
    assert result.error.startswith(f"ssh authentication failed for {sshd.user}@{sshd.host}:{sshd.port}")
    assert not marker.exists()


def test_no_credential_is_an_authentication_error(store_dir: Path, sshd: SSHServer) -> None:
    result = SSHPool(CredentialStore(store_dir), pinned_keys=lambda h, p: [sshd.host_key]).run(
        sshd.host, sshd.port, sshd.user, "true", timeout_ms=10_000
    )

    assert "authentication failed" in result.error
    assert f"no ssh_key or password credential bound to {sshd.host}:{sshd.port} in the store" in result.error


@pytest.mark.parametrize("binding", [None, "127.0.0.2", "127.0.0.1:1"])
def test_a_key_not_bound_to_the_target_is_never_offered(
    store_dir: Path, sshd: SSHServer, tmp_path: Path, binding: str | None
) -> None:
    store = CredentialStore(store_dir)
    store.put("right-key-wrong-binding", "ssh_key", sshd.client_key, target_host=binding, username=sshd.user)
    marker = tmp_path / "ran"
    pool = SSHPool(store, pinned_keys=lambda h, p: [sshd.host_key])

    with_user = pool.run(sshd.host, sshd.port, sshd.user, f"touch {marker}", timeout_ms=10_000)
    without_user = pool.run(sshd.host, sshd.port, None, f"touch {marker}", timeout_ms=10_000)

    assert f"no ssh_key or password credential bound to {sshd.host}:{sshd.port}" in with_user.error
    assert without_user.error == (
        f"no ssh username for {sshd.host}:{sshd.port}: set targetUsername or a credential username"
    )
    assert pool.transport_for(sshd.host, sshd.port, sshd.user) is None
    assert not marker.exists()


def test_a_key_bound_to_the_host_and_port_is_used(store_dir: Path, sshd: SSHServer) -> None:
    store = CredentialStore(store_dir)
    store.put("exact", "ssh_key", sshd.client_key, target_host=f"{sshd.host}:{sshd.port}")

    result = SSHPool(store, pinned_keys=lambda h, p: [sshd.host_key]).run(
        sshd.host, sshd.port, sshd.user, "echo bound", timeout_ms=10_000
    )

    assert result.output == "bound\n"


def test_a_closed_port_is_a_connection_error(store: CredentialStore) -> None:
    port = closed_port()

    result = SSHPool(store, pinned_keys=lambda h, p: []).run("127.0.0.1", port, "root", "true", timeout_ms=10_000)

    assert result.status == "failed"
    assert result.error.startswith(f"ssh connection to 127.0.0.1:{port} failed")


def test_timeout_kills_the_remote_process_group(pool: SSHPool, sshd: SSHServer) -> None:
    # sshd runs here as the test user, so the remote processes are visible locally.
    marker = unique_sleep()
    started = time.monotonic()

    result = pool.run(sshd.host, sshd.port, sshd.user, f"echo started; sleep {marker} & sleep {marker}", timeout_ms=500)

    assert result.status == "timeout"
    assert result.error == "execution timed out after 500 ms"
    assert result.output == "started\n"
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 3
    while live_processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_processes_with(marker) == []


def test_cancel_stops_a_remote_command(pool: SSHPool, sshd: SSHServer) -> None:
    marker = unique_sleep()
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()

    result = pool.run(sshd.host, sshd.port, sshd.user, f"sleep {marker}", timeout_ms=20_000, cancel=cancel)

    assert result.status == "cancelled"
    deadline = time.monotonic() + 3
    while live_processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_processes_with(marker) == []


def test_output_streams_and_is_capped(store: CredentialStore, sshd: SSHServer) -> None:
    chunks: list[tuple[float, str, int, str]] = []
    pool = SSHPool(store, pinned_keys=lambda h, p: [sshd.host_key], max_output=50)

    result = pool.run(
        sshd.host,
        sshd.port,
        sshd.user,
        "echo first; sleep 0.8; head -c 500 /dev/zero | tr '\\0' b",
        timeout_ms=10_000,
        on_output=lambda s, o, d: chunks.append((time.monotonic(), s, o, d)),
    )
    finished = time.monotonic()

    assert result.status == "completed"
    # A quarter of the 50 bytes is the head (streamed live), the last 38 the tail, the rest skipped.
    assert result.output == "first\n" + "b" * 6 + skip_marker(506 - 50, 50) + "b" * 38
    assert result.output_truncated
    assert chunks[0][1:] == ("stdout", 0, "first\n")
    assert finished - chunks[0][0] > 0.5
    assert "".join(d for _, s, _, d in chunks if s == "stdout") == "first\n" + "b" * 6


def test_concurrent_commands_share_the_pool(pool: SSHPool, sshd: SSHServer) -> None:
    results = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(
                pool.run(sshd.host, sshd.port, sshd.user, f"sleep 0.3; echo {i}", timeout_ms=10_000)
            )
        )
        for i in range(4)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.output for r in results) == ["0\n", "1\n", "2\n", "3\n"]
    assert time.monotonic() - started < 2


def test_the_username_can_come_from_the_credential(store_dir: Path, sshd: SSHServer) -> None:
    store = CredentialStore(store_dir)
    store.put("key", "ssh_key", sshd.client_key, target_host=sshd.host, username=sshd.user)

    result = SSHPool(store, pinned_keys=lambda h, p: [sshd.host_key]).run(
        sshd.host, sshd.port, None, "id -un", timeout_ms=10_000
    )

    assert result.output == f"{sshd.user}\n"
