"""Real hub and agent processes for end-to-end tests, all on 127.0.0.1."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database pytest-django set up, for server subprocesses."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


test_database_url.__test__ = False  # type: ignore[attr-defined]


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_for_file(gate: Path) -> str:
    """A shell fragment that waits until the test creates `gate`: a command paused by it stays running however
    slowly a loaded machine gets to look at it, where a fixed sleep could end first."""
    return f"while [ ! -e {shlex.quote(str(gate))} ]; do sleep 0.05; done"


def finished(command, timeout: float = 15):
    """Wait until the command ends, and return it refreshed."""
    from commands.models import Command

    wait_for(lambda: Command.objects.get(pk=command.pk).is_terminal, timeout, f"command {command.pk} to finish")
    command.refresh_from_db()
    return command


class Process:
    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv, self.log, self.env = argv, log, env or {}
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        handle = open(self.log, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env={**os.environ, **self.env}, stdout=handle,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Hub(Process):
    def __init__(self, log: Path, port: int | None = None, env: dict[str, str] | None = None,
                 workers: int | None = None) -> None:
        """``workers``: that many uvicorn worker processes, started as in production by ``python -m relayhub.serve``
        (which readies ``PROMETHEUS_MULTIPROC_DIR``); without it, one plain uvicorn process."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        from tests.conftest import CACHE_KEY_PREFIX

        # The test process's own rate counters: concurrent runs sharing one Redis never count each other's
        # failed keys, and what a test clears for 127.0.0.1 is what the hub counts.
        env = {"DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1",
               "RELAYHUB_CACHE_KEY_PREFIX": CACHE_KEY_PREFIX, **(env or {})}
        server = [str(BIN / "uvicorn"), "relayhub.asgi:application"] if workers is None else [
            sys.executable, "-m", "relayhub.serve", "--workers", str(workers)]
        argv = [*server, "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log", "--log-level", "warning"]
        super().__init__(argv, log, env)

    def start(self) -> Hub:
        super().start()

        def answering() -> bool:
            assert self.proc.poll() is None, f"hub exited:\n{self.output}"
            try:
                return requests.get(f"{self.url}/relay/commands", timeout=1).status_code == 401
            except requests.RequestException:  # refused, or too slow to answer yet on a busy machine
                return False

        wait_for(answering, 30, "the hub to answer")
        return self


class CeleryProcess(Process):
    def __init__(self, role: str, log: Path, env: dict[str, str]) -> None:
        argv = [str(BIN / "celery"), "-A", "relayhub", role, "--loglevel", "INFO"]
        if role == "worker":
            argv += ["--concurrency", "1", "--without-gossip", "--without-mingle"]
        else:
            argv += ["--schedule", str(log.with_suffix(".schedule"))]
        super().__init__(argv, log, {"DATABASE_URL": test_database_url(), **env})


class Agent(Process):
    def __init__(self, api_key: str, hub_url: str, store_dir: Path, log: Path, *args: str,
                 shared_secret: str = "", env: dict[str, str] | None = None) -> None:
        argv = [str(BIN / "relay-agent"), api_key, hub_url, "--store-dir", str(store_dir), "--log-level", "debug",
                *args]
        if shared_secret:
            argv += ["--shared-secret", shared_secret]
        super().__init__(argv, log, {"PYTHONUNBUFFERED": "1", **(env or {})})
