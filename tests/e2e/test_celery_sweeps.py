"""A real Celery worker and beat on real Redis run the sweeps by themselves (SPEC §5)."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from assignments.models import RelayStatus
from commands.models import Command
from tests.e2e.processes import CeleryProcess, wait_for

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def celery_env(tmp_path):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis server reachable")
    # A queue of its own, so concurrent test runs never eat each other's tasks.
    env = {"CELERY_BROKER_URL": REDIS_URL, "CELERY_TASK_DEFAULT_QUEUE": f"test-{uuid.uuid4().hex}", "RELAYHUB_SWEEP_EVERY_S": "1", "RELAYHUB_TIMEOUT_GRACE_S": "0",
           "RELAYHUB_ONLINE_THRESHOLD_S": "3", "RELAYHUB_VAR_DIR": str(tmp_path)}
    processes = [CeleryProcess(role, tmp_path / f"{role}.log", env).start() for role in ("worker", "beat")]
    yield processes
    for process in processes:
        process.stop()


def test_worker_and_beat_time_out_commands_and_mark_lost_relays(celery_env, e2e_relay, transactional_db):
    relay = e2e_relay.relay
    command = Command.objects.create(machine_id=relay.machine_id, command="sleep 999", timeout_ms=500)
    assert command.claim(relay)
    RelayStatus.objects.filter(pk=relay.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=1),
                                                   last_connection_event="connected")
    worker, beat = celery_env

    def swept() -> bool:
        assert worker.proc.poll() is None, worker.output
        assert beat.proc.poll() is None, beat.output
        status = RelayStatus.objects.get(pk=relay.pk)
        return Command.objects.get(pk=command.pk).status == "timeout" and \
            status.last_connection_event == "heartbeat_lost"

    wait_for(swept, 45, "the beat-driven sweeps", interval=0.5)
    command.refresh_from_db()
    # Both sweeps want this command; whichever runs first names the reason.
    assert command.error in ("execution timed out", "relay lost")
    assert list(relay.events.values_list("kind", flat=True)) == ["heartbeat_lost"]
