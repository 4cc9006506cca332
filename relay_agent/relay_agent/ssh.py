"""Runs commands over SSH through a pool of persistent, verified paramiko connections."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .executor import feed_stdin
from .host_keys import HostKeyError, KnownHostsFiles, accepted_keys, fingerprint, parse_public_key
from .logs import get_logger
from .output import (
    DEFAULT_HEAD_FRACTION,
    DEFAULT_MAX_OUTPUT,
    ExecResult,
    OutputCallback,
    StreamCapture,
    head_bytes,
    status_for_exit,
)
from .remote_line import PidMarkerReader, remote_line
from .ssh_auth import SSHAuthError, SSHConnectError, SSHError, authenticate
from .store import Credential, CredentialStore, binding_example

if TYPE_CHECKING:
    import paramiko

log = get_logger(__name__)

_POLL_SECONDS = 0.05


class SSHHostKeyError(SSHError, HostKeyError):
    """`unknown`: neither a pin nor known_hosts names the host; otherwise the key is not the one expected."""

    def __init__(self, message: str, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


@dataclass
class _Connection:
    transport: paramiko.Transport
    host_key: bytes
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0


class SSHPool:
    def __init__(
        self,
        store: CredentialStore,
        known_hosts: Iterable[Path | str] = (),
        pinned_keys: Callable[[str, int], list[str]] | None = None,
        idle_timeout: float = 300.0,
        connect_timeout: float = 10.0,
        keepalive: int = 30,
        max_output: int = DEFAULT_MAX_OUTPUT,
        kill_grace: float = 2.0,
        max_output_head: float | int = DEFAULT_HEAD_FRACTION,
    ) -> None:
        self.store = store
        self.known_hosts = KnownHostsFiles([Path(p).expanduser() for p in known_hosts])
        self.pinned_keys = pinned_keys or (lambda host, port: [])
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.max_output = max_output
        self.max_output_head = max_output_head
        self.kill_grace = kill_grace
        self._conns: dict[tuple[str, int, str], _Connection] = {}
        self._key_locks: dict[tuple[str, int, str], threading.Lock] = {}
        self._lock = threading.Lock()

    # -- pool ---------------------------------------------------------------------------------------

    def transport_for(self, host: str, port: int, username: str) -> paramiko.Transport | None:
        conn = self._conns.get((host, port, username))
        return conn.transport if conn else None

    def reap_idle(self) -> int:
        now = time.monotonic()
        with self._lock:
            idle = [k for k, c in self._conns.items() if c.busy == 0 and now - c.last_used >= self.idle_timeout]
            closing = [self._conns.pop(k) for k in idle]
        for conn in closing:
            conn.transport.close()
        for host, port, user in idle:
            log.info("ssh connection closed after idle", host=host, port=port, user=user)
        return len(closing)

    def close(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.transport.close()

    def _acquire(self, host: str, port: int, username: str, fresh: bool = False) -> _Connection:
        key = (host, port, username)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            conn = self._conns.get(key)
            if conn is not None and (fresh or not self._healthy(conn, host, port)):
                with self._lock:
                    self._conns.pop(key, None)
                if conn.busy == 0:
                    conn.transport.close()
                conn = None
            if conn is None:
                conn = self._connect(host, port, username)
                with self._lock:
                    self._conns[key] = conn
            conn.busy += 1
            return conn

    def _release(self, conn: _Connection) -> None:
        with self._lock:
            conn.busy -= 1
            conn.last_used = time.monotonic()

    def _healthy(self, conn: _Connection, host: str, port: int) -> bool:
        transport = conn.transport
        if not (transport.is_active() and transport.is_authenticated()):
            return False
        # Pins pushed or known_hosts edited after the connection was made must hold for it too.
        try:
            accepted, _ = self.accepted_keys(host, port)
        except HostKeyError:
            return False
        if conn.host_key not in {key.asbytes() for key in accepted}:
            return False
        try:
            transport.send_ignore()
        except Exception:
            return False
        return True

    # -- connecting ---------------------------------------------------------------------------------

    def accepted_keys(self, host: str, port: int) -> tuple[list[paramiko.PKey], str]:
        where = f"{host}:{port}"
        try:
            pins = [parse_public_key(p) for p in self.pinned_keys(host, port)]
            return accepted_keys(where, pins, self.known_hosts.lookup(host, port))
        except HostKeyError as exc:
            raise SSHHostKeyError(str(exc)) from None

    def verify_host_key(
        self, host: str, port: int, key: paramiko.PKey, accepted: list[paramiko.PKey], source: str
    ) -> None:
        """Raise SSHHostKeyError unless `key` is among the `accepted` keys (from `accepted_keys`)."""
        where = f"{host}:{port}"
        if key.asbytes() in {k.asbytes() for k in accepted}:
            return
        known = self.known_hosts.lookup(host, port)
        if accepted or known.named or key.asbytes() in known.revoked:
            revoked = " (revoked there)" if key.asbytes() in known.revoked else ""
            raise SSHHostKeyError(
                f"ssh host key mismatch for {where}: server offered {fingerprint(key)}{revoked}, "
                f"which matches no {source} key; refusing to connect"
            )
        raise SSHHostKeyError(
            f"ssh host key for {where} is unknown ({fingerprint(key)}): "
            "pin it with an ssh_targets hostKey or add it to known_hosts; refusing to connect",
            unknown=True,
        )

    def credentials_for(self, host: str, port: int, username: str) -> list[Credential]:
        """The credentials `for_ssh` offers this target; SSHAuthError when there are none."""
        credentials = self.store.for_ssh(host, port, username)
        if not credentials:
            raise SSHAuthError(
                f"ssh authentication failed for {username}@{host}:{port}: "
                f"no ssh_key or password credential bound to {host}:{port} in the store; a credential is offered "
                f"only to the host its target host names (here {host} or {binding_example(host, port)}), "
                "and one without a target host to none"
            )
        return credentials

    def username_for(self, host: str, port: int, username: str | None) -> str | None:
        """`username`, or else that of the first credential offered to the target."""
        if username:
            return username
        return next((c.username for c in self.store.for_ssh(host, port, None) if c.username), None)

    def open_transport(self, host: str, port: int, accepted: list[paramiko.PKey]) -> paramiko.Transport:
        """A new TCP connection with the SSH handshake done, nothing verified or sent beyond it."""
        import paramiko

        where = f"{host}:{port}"
        try:
            sock = socket.create_connection((host, port), timeout=self.connect_timeout)
        except OSError as exc:
            raise SSHConnectError(f"ssh connection to {where} failed: {exc.strerror or exc}") from None
        # Without TCP_NODELAY each exec waits ~40 ms on Nagle's algorithm and delayed ACKs.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        try:
            if accepted:
                self._prefer_key_types(transport, accepted)
            try:
                transport.start_client(timeout=self.connect_timeout)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise SSHConnectError(f"ssh connection to {where} failed: {exc or type(exc).__name__}") from None
        except BaseException:
            transport.close()
            raise
        return transport

    def _connect(self, host: str, port: int, username: str) -> _Connection:
        credentials = self.credentials_for(host, port, username)
        accepted, source = self.accepted_keys(host, port)
        transport = self.open_transport(host, port, accepted)
        try:
            server_key = transport.get_remote_server_key()
            self.verify_host_key(host, port, server_key, accepted, source)
            authenticate(transport, username, credentials, f"{host}:{port}")
            transport.set_keepalive(self.keepalive)
        except BaseException:
            transport.close()
            raise
        log.info("ssh connected", host=host, port=port, user=username, hostKey=fingerprint(server_key))
        return _Connection(transport, server_key.asbytes())

    @staticmethod
    def _prefer_key_types(transport: paramiko.Transport, keys: list[paramiko.PKey]) -> None:
        # Ask the server for the key type we can verify, as OpenSSH does with known_hosts.
        preferred: list[str] = []
        for key in keys:
            name = key.get_name()
            preferred += ["rsa-sha2-512", "rsa-sha2-256", name] if name == "ssh-rsa" else [name]
        options = transport.get_security_options()
        available = list(options.key_types)
        ordered = [t for t in preferred if t in available]
        options.key_types = ordered + [t for t in available if t not in ordered]

    # -- running ------------------------------------------------------------------------------------

    def run(
        self,
        host: str,
        port: int,
        username: str | None,
        command: str | Sequence[str],
        timeout_ms: int,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        import paramiko

        cancel = cancel or threading.Event()
        started = time.monotonic()
        port = int(port or 22)
        username = self.username_for(host, port, username)
        if not username:
            return ExecResult.refused(f"no ssh username for {host}:{port}: set targetUsername or a credential username")
        if cancel.is_set():
            return ExecResult(status="cancelled", error="command cancelled")
        channel = conn = None
        for fresh in (False, True):
            try:
                conn = self._acquire(host, port, username, fresh=fresh)
            except SSHError as exc:
                return ExecResult(status="failed", error=str(exc), duration_ms=_ms_since(started))
            except Exception as exc:
                return ExecResult(
                    status="failed",
                    error=f"ssh connection to {host}:{port} failed: {exc}",
                    duration_ms=_ms_since(started),
                )
            try:
                channel = conn.transport.open_session(timeout=self.connect_timeout)
                break
            except (paramiko.SSHException, EOFError, OSError) as exc:
                # The pooled connection died between the health check and now; nothing ran, so retry once.
                self._release(conn)
                if fresh:
                    return ExecResult(
                        status="failed",
                        error=f"ssh connection to {host}:{port} failed: {exc}",
                        duration_ms=_ms_since(started),
                    )
        assert channel is not None and conn is not None  # nosec B101 - narrows types; both are set on every path above
        try:
            return self._exec(conn, channel, command, timeout_ms, on_output, cancel, started, stdin)
        finally:
            channel.close()
            self._release(conn)

    def _exec(
        self,
        conn: _Connection,
        channel: paramiko.Channel,
        command: str | Sequence[str],
        timeout_ms: int,
        on_output: OutputCallback | None,
        cancel: threading.Event,
        started: float,
        stdin: bytes | None = None,
    ) -> ExecResult:
        head = head_bytes(self.max_output, self.max_output_head)
        stdout = StreamCapture("stdout", self.max_output, on_output, head)
        stderr = StreamCapture("stderr", self.max_output, on_output, head)
        marker = PidMarkerReader(stderr)
        try:
            channel.exec_command(remote_line(command))  # nosec B601 - every argument quoted; policy is enforced before
        except Exception as exc:
            return ExecResult(status="failed", error=f"ssh exec failed: {exc}", duration_ms=_ms_since(started))
        if stdin is not None:
            feed_stdin(channel.sendall, channel.shutdown_write, stdin)
        deadline = started + timeout_ms / 1000 if timeout_ms and timeout_ms > 0 else None
        stopped_by: str | None = None
        fd = channel.fileno()
        while True:
            while channel.recv_ready():
                stdout.feed(channel.recv(65536))
            while channel.recv_stderr_ready():
                marker.feed(channel.recv_stderr(65536))
            if channel.eof_received and channel.exit_status_ready() or channel.closed:
                if not channel.recv_ready() and not channel.recv_stderr_ready():
                    break
                continue
            if cancel.is_set():
                stopped_by = "cancelled"
            elif deadline is not None and time.monotonic() >= deadline:
                stopped_by = "timeout"
            if stopped_by:
                self._kill_remote(conn, marker.pgid)
                break
            wait = _POLL_SECONDS if deadline is None else max(0.0, min(_POLL_SECONDS, deadline - time.monotonic()))
            if channel.eof_received:
                channel.status_event.wait(wait)
            else:
                select.select([fd], [], [], wait)
        marker.close()
        stdout.close()
        result = ExecResult(
            status="completed",
            output=stdout.text,
            stderr=stderr.text,
            duration_ms=_ms_since(started),
            output_truncated=stdout.truncated or stderr.truncated,
        )
        if stopped_by == "timeout":
            result.status, result.error = "timeout", f"execution timed out after {timeout_ms} ms"
        elif stopped_by == "cancelled":
            result.status, result.error = "cancelled", "command cancelled"
        else:
            exit_code = channel.recv_exit_status() if channel.exit_status_ready() else -1
            if exit_code < 0:
                result.status, result.error = "failed", "remote command ended without an exit status"
            else:
                result.exit_code, result.status = exit_code, status_for_exit(exit_code)
        return result

    def _kill_remote(self, conn: _Connection, pgid: int | None) -> None:
        if pgid is None:
            log.warning("remote process group unknown; closing the channel only")
            return
        tries = max(1, int(self.kill_grace / 0.1))
        script = (
            f"kill -TERM -{pgid} 2>/dev/null; i=0; "
            f"while kill -0 -{pgid} 2>/dev/null && [ $i -lt {tries} ]; do sleep 0.1; i=$((i+1)); done; "
            f"kill -KILL -{pgid} 2>/dev/null; true"
        )
        try:
            killer = conn.transport.open_session(timeout=self.connect_timeout)
            killer.exec_command(script)  # nosec B601 - a kill of a numeric process group id we read back
            # Zombies of a non-reaping remote init keep `kill -0` true, so do not wait out the
            # whole grace here; the script finishes on its own after the channel is closed.
            killer.status_event.wait(0.5)
            killer.close()
        except Exception as exc:
            log.warning("remote kill failed", error=str(exc))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
