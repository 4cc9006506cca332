"""A throwaway OpenSSH server on 127.0.0.1 for tests.

    with run_sshd(tmp_path) as server:
        server.port, server.user, server.host_key, server.client_key, server.known_hosts_line()

The server runs `sshd -D` as the current user on a free port, with its own host key,
an authorized client key and every file in one temporary directory, so several can run in parallel.
It logs to `dir / "sshd.log"`; `log_level="INFO"` records each accepted login there.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")


class SSHDUnavailable(RuntimeError):
    pass


@dataclass
class SSHServer:
    host: str
    port: int
    user: str
    host_key: str  # "ssh-ed25519 AAAA..." as an ssh_targets push pins it
    client_key: str  # OpenSSH private key text, authorized for `user`
    dir: Path
    process: subprocess.Popen

    def known_hosts_line(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_key}"

    def write_known_hosts(self, path: Path) -> Path:
        path.write_text(self.known_hosts_line() + "\n")
        return path


def find_sshd(install: bool = True) -> str:
    """Path of sshd; installs openssh-server once (as root with apt-get) when it is missing."""
    for candidate in SSHD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        lock_path = Path(tempfile.gettempdir()) / "relay-agent-tests-sshd-install.lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not any(os.access(c, os.X_OK) for c in SSHD_CANDIDATES):
                env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                cmd = ["apt-get", "install", "-y", "-qq", "openssh-server"]
                if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
                    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
                    subprocess.run(cmd, env=env, capture_output=True)
        return find_sshd(install=False)
    raise SSHDUnavailable("sshd is not installed (apt-get install openssh-server)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "relay-agent-test", "-f", str(path)], check=True
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def _wait_ready(port: int, process: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.02)
    return False


@contextlib.contextmanager
def run_sshd(workdir: Path | None = None, log_level: str = "ERROR", set_env: Sequence[str] = ()) -> Iterator[SSHServer]:
    """``set_env``: more NAME=VALUE for the sessions (sshd takes one SetEnv line), e.g. ``PATH=/nowhere``."""
    sshd = find_sshd()
    with contextlib.ExitStack() as stack:
        base = (
            Path(workdir) if workdir else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="relay-sshd-")))
        )
        base.mkdir(parents=True, exist_ok=True)
        host_key = _keygen(base / "host_ed25519")
        client_pub = _keygen(base / "client_ed25519")
        (base / "authorized_keys").write_text(client_pub + "\n")
        if os.geteuid() == 0:
            # sshd started by root insists on its privilege separation directory.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        for _ in range(5):
            port = _free_port()
            config = base / "sshd_config"
            config.write_text(
                "\n".join(
                    [
                        f"Port {port}",
                        "ListenAddress 127.0.0.1",
                        f"HostKey {base / 'host_ed25519'}",
                        f"PidFile {base / 'sshd.pid'}",
                        f"AuthorizedKeysFile {base / 'authorized_keys'}",
                        "StrictModes no",
                        "UsePAM no",
                        "PermitRootLogin yes",
                        "PubkeyAuthentication yes",
                        "PasswordAuthentication no",
                        "KbdInteractiveAuthentication no",
                        "MaxSessions 64",
                        "MaxStartups 64",
                        f"LogLevel {log_level}",
                        # bash sources ~/.bashrc for ssh commands unless nested; a heavy bashrc
                        # (pyenv init) would otherwise add ~100 ms to every test command.
                        " ".join(["SetEnv SHLVL=5", *set_env]),
                        "",
                    ]
                )
            )
            log = open(base / "sshd.log", "ab")
            process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
            log.close()
            if _wait_ready(port, process, time.monotonic() + 10):
                break
            process.kill()
            process.wait()
        else:
            raise SSHDUnavailable(f"sshd did not start: {(base / 'sshd.log').read_text()[-2000:]}")
        try:
            yield SSHServer(
                host="127.0.0.1",
                port=port,
                user=getpass.getuser(),
                host_key=host_key,
                client_key=(base / "client_ed25519").read_text(),
                dir=base,
                process=process,
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
