"""Fault test of issue 20: Redis killed mid-run and started again, under 20 agents and 2,000 commands.

The hub uses Redis for wake-ups across processes, its rate counters and Celery. While Redis is gone the hub
must keep serving relays (wake-ups fall back to the long-poll's own re-reads, rate limits fail open), and once
it is back the wake-ups resume. Redis here is a private server on its own port, so that killing it touches no
other test.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import redis

from assignments.models import RelayAssignment
from tests.e2e.fault_support import ExecCallers, pg_only
from tests.e2e.processes import Hub, free_port, wait_for
from tests.e2e.test_faults import check_each_ran_at_most_once_and_no_result_was_lost, finished, queue

pytestmark = pg_only
AGENTS = 20
COMMANDS = 2000
EXEC_CALLERS = 10
OUTAGE_S = 8


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        self.directory.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, 10, "the private Redis to answer")
        return self

    def answers(self) -> bool:
        try:
            return redis.Redis.from_url(self.url, socket_timeout=1).ping()
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def test_redis_killed_and_restarted_mid_run_loses_nothing(transactional_db, start_agent, tmp_path):
    ran_dir = tmp_path / "ran"
    ran_dir.mkdir()
    broker = PrivateRedis(tmp_path / "redis").start()
    hub = Hub(tmp_path / "hub.log", env={"REDIS_URL": broker.url}).start()
    try:
        issued = [RelayAssignment.issue(machine_id="fault-machine", name=f"relay-{n}") for n in range(AGENTS)]
        for key in issued:
            start_agent(key, hub, "--heartbeat-interval", "2000", wait=False)
        tokens = queue("fault-machine", ran_dir, COMMANDS // 2)

        callers = ExecCallers("fault-machine", EXEC_CALLERS)
        callers.start(slice(0, EXEC_CALLERS // 2))
        wait_for(lambda: finished() >= COMMANDS // 4, 120, "a quarter of the commands to end", interval=0.1)

        broker.kill()
        killed_at = time.monotonic()
        tokens |= queue("fault-machine", ran_dir, COMMANDS // 2)  # queued while Redis is gone
        callers.start(slice(EXEC_CALLERS // 2, None))
        ended_during = finished()
        time.sleep(OUTAGE_S)
        progress = finished() - ended_during
        broker.start()
        back_at = time.monotonic()

        wait_for(lambda: finished() >= COMMANDS + EXEC_CALLERS, 240, "every command to end", interval=0.5)
        recovered = time.monotonic() - back_at
        print(f"\nRedis down {back_at - killed_at:.1f} s: {progress} commands ended meanwhile; "
              f"every command ended {recovered:.1f} s after it was back")
        assert progress > 0, "relays kept working while Redis was gone"
        check_each_ran_at_most_once_and_no_result_was_lost(tokens, ran_dir)
        callers.check_every_caller_was_answered()
        assert "Internal Server Error" not in hub.output and " 500" not in hub.output, hub.output[-3000:]
    finally:
        hub.kill()
        broker.kill()
