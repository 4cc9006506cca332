"""Every process the bench starts, on 127.0.0.1, and their guaranteed clean-up.

Each child gets its own process group; `stop_all()` (run on normal exit, on an
exception, on Ctrl-C and on SIGTERM) stops them by pid / process group, newest first.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IS_ROOT = os.geteuid() == 0

_ALL: list[Proc] = []
_CLEANUPS: list[Callable[[], None]] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (one at a time, the kernel often hands the same one out again)."""
    with contextlib.ExitStack() as holding:
        ports = []
        for _ in range(count):
            sock = holding.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    return ports


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_exc, value = exc, None
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_exc})"
                                                                                 if last_exc else ""))


class Proc:
    """A child process in its own session; stopped by `stop()` or at exit."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path = ROOT, user: str | None = None, stop_signal: int = signal.SIGTERM) -> None:
        self.name, self.argv, self.log, self.env, self.cwd, self.user = name, argv, log, env or {}, cwd, user
        self.stop_signal = stop_signal
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        handle = open(self.log, "ab")  # noqa: SIM115 - the child keeps it
        kwargs = {"user": self.user} if self.user else {}
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env={**os.environ, **self.env}, stdout=handle,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                     **kwargs)
        handle.close()
        _ALL.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode if self.proc else None}:\n"
                               f"{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of its group (children it forked) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self in _ALL:
            _ALL.remove(self)


def on_cleanup(fn: Callable[[], None]) -> None:
    _CLEANUPS.append(fn)


def stop_all() -> None:
    while _ALL:
        proc = _ALL[-1]
        try:
            proc.stop()
        except Exception as exc:  # noqa: BLE001 - keep stopping the rest
            print(f"bench: could not stop {proc.name}: {exc}", file=sys.stderr)
            with contextlib.suppress(ValueError):
                _ALL.remove(proc)
    while _CLEANUPS:
        with contextlib.suppress(Exception):
            _CLEANUPS.pop()()


INTERRUPTED = threading.Event()


def _on_sigterm(signum, frame) -> None:  # noqa: ANN001
    INTERRUPTED.set()
    raise SystemExit(128 + signum)


def _on_sigint(signum, frame) -> None:  # noqa: ANN001
    INTERRUPTED.set()
    raise KeyboardInterrupt


def install_cleanup() -> None:
    """Stop everything at exit; Ctrl-C, SIGTERM and SIGHUP end the run (even when started with SIGINT ignored)."""
    atexit.register(stop_all)
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)


def raise_nofile() -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- system packages ---------------------------------------------------------------------------------

def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _sshd() -> str | None:
    for candidate in ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def ensure_system_packages() -> None:
    missing = []
    if _pg_bin() is None:
        missing.append("postgresql")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if _sshd() is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        missing += ["openssh-server", "openssh-client"]
    if not missing:
        return
    if not (IS_ROOT and shutil.which("apt-get")):
        raise RuntimeError(f"missing {', '.join(missing)}: apt-get install -y {' '.join(missing)}")
    print(f"bench: installing {' '.join(missing)} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", *missing]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        subprocess.run(cmd, env=env, capture_output=True, check=True)


# -- PostgreSQL ----------------------------------------------------------------------------------------

class Postgres:
    """A throwaway cluster: initdb into a temp dir (as user postgres when we are root), trust auth on 127.0.0.1."""

    USER = "bench"

    def __init__(self, base: Path) -> None:
        self.bin = _pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL binaries not found")
        self.dir = base / "pgdata"
        self.sock_dir = base / "pgsock"
        self.port = free_port()
        self.run_as = "postgres" if IS_ROOT else None
        self.proc: Proc | None = None

    def start(self, log_dir: Path) -> Postgres:
        self.dir.mkdir(mode=0o700)
        self.sock_dir.mkdir()
        if self.run_as:
            for path in (self.dir, self.sock_dir):
                shutil.chown(path, self.run_as, self.run_as)
        kwargs = {"user": self.run_as} if self.run_as else {}
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.dir), "-U", self.USER, "--auth=trust", "-E", "UTF8",
                        "--no-sync", "--locale=C"], check=True, capture_output=True, cwd="/", **kwargs)
        log = log_dir / "postgres.log"
        if self.run_as:
            log.touch()
            shutil.chown(log, self.run_as, self.run_as)
        self.proc = Proc("postgres", [str(self.bin / "postgres"), "-D", str(self.dir), "-p", str(self.port),
                                      "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.sock_dir}",
                                      "-c", "max_connections=400", "-c", "shared_buffers=256MB"],
                         log, cwd=Path("/"), user=self.run_as, stop_signal=signal.SIGINT).start()
        import psycopg

        def ready() -> bool:
            self.proc.check_alive()
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True

        wait_for(ready, 60, "PostgreSQL to accept connections", 0.1)
        return self

    def url(self, db: str) -> str:
        return f"postgres://{self.USER}@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class Redis:
    def __init__(self) -> None:
        self.port = free_port()

    def start(self, workdir: Path, log_dir: Path) -> Redis:
        self.proc = Proc("redis", ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(workdir), "--maxclients", "10000"],
                         log_dir / "redis.log").start()

        def ready() -> bool:
            self.proc.check_alive()
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_for(ready, 30, "redis-server to answer")
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


# -- OpenSSH targets ---------------------------------------------------------------------------------

class SSHTargets:
    """`count` SSH targets on 127.0.0.1, each its own port, served by sshd processes of up to 16 ports each.

    One port per target, never shared: the agent pools a connection per (host, port, user) and
    ansible keeps a ControlPersist master per host:port:user, so targets sharing a port would let
    both tools skip handshakes, and a cold run would not be cold. 200 targets are 13 sshd processes.
    """

    PORTS_PER_SSHD = 16  # sshd listens on at most 16 sockets (MAX_LISTEN_SOCKS)

    def __init__(self, base: Path, count: int) -> None:
        self.dir = base / "sshd"
        self.count = count
        self.user = getpass.getuser()
        self.ports: list[int] = []
        self.procs: list[Proc] = []

    def start(self, log_dir: Path) -> SSHTargets:
        sshd = _sshd()
        if sshd is None:
            raise RuntimeError("sshd not installed")
        self.dir.mkdir()
        for name in ("host_ed25519", "client_ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "relayhub-bench", "-f",
                            str(self.dir / name)], check=True)
        self.host_key = " ".join((self.dir / "host_ed25519.pub").read_text().split()[:2])
        self.client_key_path = self.dir / "client_ed25519"
        (self.dir / "authorized_keys").write_text((self.dir / "client_ed25519.pub").read_text())
        if IS_ROOT:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.ports = []
        # Distinct ports: two targets on one port would share the agent's pooled connection.
        all_ports = free_ports(self.count)
        for group in range(0, self.count, self.PORTS_PER_SSHD):
            ports = all_ports[group:group + self.PORTS_PER_SSHD]
            config = self.dir / f"sshd_config_{group}"
            config.write_text("\n".join([
                *(f"Port {port}" for port in ports),
                "ListenAddress 127.0.0.1",
                f"HostKey {self.dir / 'host_ed25519'}",
                f"PidFile {self.dir / f'sshd_{group}.pid'}",
                f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                "StrictModes no", "UsePAM no", "PermitRootLogin yes", "PubkeyAuthentication yes",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                # Every target is logged into at once: no random drops of unauthenticated connections
                # (the default MaxStartups is 10:30:100 per sshd), and room for many sessions per login.
                "MaxSessions 100", "MaxStartups 1000", "LoginGraceTime 60", "LogLevel ERROR", "UseDNS no",
                "PrintMotd no", "PrintLastLog no",
                # A login shell sourcing a heavy ~/.bashrc would be measured, not the tools.
                "SetEnv SHLVL=5", "",
            ]))
            self.procs.append(Proc(f"sshd-{group}", [sshd, "-D", "-e", "-f", str(config)],
                                   log_dir / f"sshd-{group}.log").start())
            self.ports += ports

        def ready() -> bool:
            for proc in self.procs:
                proc.check_alive()
            for port in self.ports:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    if not sock.recv(64).startswith(b"SSH-"):
                        return False
            return True

        wait_for(ready, 30, "sshd targets to answer", 0.1)
        self.known_hosts = self.dir / "known_hosts"
        self.known_hosts.write_text("".join(f"[127.0.0.1]:{port} {self.host_key}\n" for port in self.ports))
        return self


def make_workdir() -> Path:
    base = Path(tempfile.mkdtemp(prefix="relayhub-bench-"))
    base.chmod(0o755)  # PostgreSQL (another user) must reach its data dir inside
    on_cleanup(lambda: shutil.rmtree(base, ignore_errors=True))
    return base
