"""The bench's own PostgreSQL, Redis, hubs and agents, and the Django set-up of the bench process itself."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.measure import CpuWindow
from bench.services import BIN, ROOT, Postgres, Proc, Redis, ensure_system_packages, free_port, make_workdir, \
    wait_for

HIGH_RATE = "100000000/min"


class Stack:
    """PostgreSQL + Redis + a migrated database; hubs and agents started on demand."""

    def __init__(self, log_dir: Path, hub_env: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.hub_env = hub_env or {}
        self._agents = 0
        self._hubs = 0

    def start(self) -> Stack:
        ensure_system_packages()
        self.work = make_workdir()
        started = time.monotonic()
        self.postgres = Postgres(self.work).start(self.log_dir)
        self.redis = Redis().start(self.work, self.log_dir)
        self.database_url = self.postgres.create_database("relayhub_bench")
        (self.work / "var").mkdir()
        self.env = {
            "DJANGO_SETTINGS_MODULE": "relayhub.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "RELAYHUB_RELAY_RATE": HIGH_RATE,
            "RELAYHUB_OPERATOR_RATE": HIGH_RATE,
            "RELAYHUB_VERIFY_RATE": HIGH_RATE,
            "RELAYHUB_VAR_DIR": str(self.work / "var"),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            # Hubs and agents run this tree's code, not whatever checkout the venv's editable install names.
            "PYTHONPATH": os.pathsep.join([str(ROOT / "relay_agent"), str(ROOT),
                                           *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        migrate = subprocess.run([str(BIN / "python"), "manage.py", "migrate", "--noinput"], cwd=ROOT,
                                 env={**os.environ, **self.env}, capture_output=True, text=True)
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-2000:]}")
        # This process is the "Django process pointed at the bench DB" that calls exec().
        os.environ.update(self.env)
        import django

        django.setup()
        self.setup_s = time.monotonic() - started
        return self

    def db_mode(self) -> str:
        """How the hub reaches PostgreSQL, as its settings (from the same environment) say."""
        from django.conf import settings

        db = settings.DATABASES["default"]
        pool = (db.get("OPTIONS") or {}).get("pool")
        if pool:
            return f"psycopg pool {pool if isinstance(pool, dict) else '(defaults)'}"
        return f"CONN_MAX_AGE={db.get('CONN_MAX_AGE', 0)}"

    def hub(self, name: str = "hub", extra_env: dict[str, str] | None = None, workers: int = 1) -> Hub:
        self._hubs += 1
        return Hub(self, self.log_dir / f"{name}-{self._hubs}.log", {**self.hub_env, **(extra_env or {})},
                   workers).start()

    def issue(self, machine_id: str, name: str | None = None):
        from assignments.models import RelayAssignment

        return RelayAssignment.issue(machine_id=machine_id, name=name or f"bench {machine_id}")

    def agent(self, issued, hub_url: str, *args: str, name: str = "agent") -> Agent:
        self._agents += 1
        store = self.work / f"agent-store-{self._agents}"
        return Agent(issued, hub_url, store, self.log_dir / f"{name}-{self._agents}.log", *args)


class Hub(Proc):
    """One uvicorn serving relayhub through bench.counting_asgi (a request counter around the app); with
    ``workers`` > 1, uvicorn's supervisor and that many worker processes, whose counters are summed."""

    def __init__(self, stack: Stack, log: Path, extra_env: dict[str, str] | None = None, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        argv = [str(BIN / "uvicorn"), "bench.counting_asgi:application", "--host", "127.0.0.1", "--port",
                str(self.port), "--no-access-log", "--log-level", "warning", "--backlog", "4096",
                "--timeout-graceful-shutdown", "2"]
        env = {**stack.env, **(extra_env or {})}
        self.stats_dir: Path | None = None
        self.worker_pids: set[str] = set()  # as first seen answering
        self.lost_workers: set[str] = set()  # workers uvicorn replaced since (their counters went with them)
        self.split: list[int] = []  # requests each worker served, read as it is stopped
        if workers > 1:
            argv += ["--workers", str(workers)]
            self.stats_dir = Path(tempfile.mkdtemp(prefix="hub-stats-", dir=stack.work))
            env["BENCH_STATS_DIR"] = str(self.stats_dir)
        super().__init__("hub", argv, log, env)

    def start(self) -> Hub:
        super().start()

        def answering() -> bool:
            self.check_alive()
            if self.stats_dir is not None and len(self._worker_stats("counts")) < self.workers:
                self.worker_pids = set()
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/__bench__/counts", timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(answering, 60, "the hub to answer", 0.1)
        return self

    def stop(self, timeout: float = 10) -> None:
        if self.stats_dir is not None and self.alive():  # how the requests were spread over the workers
            with contextlib.suppress(Exception):
                self.split = [sum(part.values()) for part in self._worker_stats("counts")]
        super().stop(timeout)

    def cpu_windows(self) -> dict[str, CpuWindow]:
        """CPU of the hub: uvicorn and, with workers, its worker processes."""
        return {"hub": CpuWindow([self.pid], tree=True)}

    def _worker_stats(self, what: str) -> list[dict]:
        """Each live worker's counters, from its stats socket (a dead worker's socket refuses: skipped)."""
        answers, answered = [], set()
        for path in sorted(self.stats_dir.glob("*.sock")) if self.stats_dir else []:
            with contextlib.suppress(OSError, ValueError), socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(str(path))
                sock.sendall(what.encode() + b"\n")
                answers.append(json.loads(b"".join(iter(lambda: sock.recv(65536), b""))))  # noqa: B023
                answered.add(path.stem)
        # uvicorn's supervisor replaces a worker that misses its health check (a starved machine can do that)
        self.worker_pids = self.worker_pids or answered
        self.lost_workers |= self.worker_pids - answered
        return answers

    def timings(self) -> dict[str, list[float]]:
        if self.stats_dir is not None:
            return merge_timings(self._worker_stats("timings"))
        with urllib.request.urlopen(f"{self.url}/__bench__/timings", timeout=10) as response:
            return json.loads(response.read())

    def counts(self) -> dict[str, int]:
        if self.stats_dir is not None:
            return merge_counts(self._worker_stats("counts"))
        with urllib.request.urlopen(f"{self.url}/__bench__/counts", timeout=10) as response:
            return json.loads(response.read())


def merge_counts(parts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for route, count in part.items():
            total[route] = total.get(route, 0) + count
    return total


def merge_timings(parts: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """{route: [count, total_s, max_s]} of several processes as one."""
    total: dict[str, list[float]] = {}
    for part in parts:
        for route, (count, seconds, peak) in part.items():
            entry = total.setdefault(route, [0, 0.0, 0.0])
            entry[0] += count
            entry[1] += seconds
            entry[2] = max(entry[2], peak)
    return total


class Agent(Proc):
    def __init__(self, issued, hub_url: str, store: Path, log: Path, *args: str) -> None:
        self.issued = issued
        self.store = store
        argv = [str(BIN / "relay-agent"), hub_url, "--store-dir", str(store), "--log-level", "warning", *args]
        # The key and secret go through the environment, not argv.
        env = {"RELAY_API_KEY": issued.api_key, "RELAY_SHARED_SECRET": issued.transport_secret,
               "PYTHONUNBUFFERED": "1"}
        super().__init__(f"agent {issued.relay.machine_id}", argv, log, env)

    def add_credential(self, name: str, cred_type: str, value_file: Path, target_host: str, username: str) -> None:
        subprocess.run([str(BIN / "relay-agent"), "credentials", "add", name, "--type", cred_type, "--target-host",
                        target_host, "--username", username, "--value-file", str(value_file), "--store-dir",
                        str(self.store)], check=True, capture_output=True)

    def wait_ready(self, timeout: float = 60) -> Agent:
        """Until the agent has verified its key and reported its status (its long-poll starts right after)."""
        from assignments.models import RelayStatus

        def reported() -> bool:
            self.check_alive()
            return bool(RelayStatus.objects.filter(relay=self.issued.relay, hostname__gt="").exists())

        wait_for(reported, timeout, f"{self.name} to report its status", 0.1)
        return self


def wait_all_ready(agents: list[Agent], timeout: float = 120) -> None:
    from assignments.models import RelayStatus

    ids = [a.issued.relay.pk for a in agents]

    def reported() -> bool:
        for agent in agents:
            agent.check_alive()
        return RelayStatus.objects.filter(relay__in=ids, hostname__gt="").count() == len(ids)

    wait_for(reported, timeout, f"{len(agents)} agents to report their status", 0.2)


def python() -> str:
    return str(BIN / "python") if (BIN / "python").exists() else sys.executable
