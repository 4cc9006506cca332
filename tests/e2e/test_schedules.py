"""A template schedule fired by the real beat (DatabaseScheduler), run by a real worker on a real agent."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
import redis
from django.contrib.auth.models import User

from commands.models import Command
from runbooks.models import INTERVAL_TOLERANCE, JobTemplate, RunState, ScheduledRun, TemplateSchedule
from tests.e2e.processes import CeleryProcess, wait_for

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
EVERY_S = 3


@pytest.fixture
def start_celery(tmp_path):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis server reachable")
    # A queue of its own, so concurrent test runs never eat each other's tasks.
    env = {"CELERY_BROKER_URL": REDIS_URL, "CELERY_TASK_DEFAULT_QUEUE": f"test-{uuid.uuid4().hex}",
           "RELAYHUB_SWEEP_EVERY_S": "1", "RELAYHUB_VAR_DIR": str(tmp_path)}
    started: list[CeleryProcess] = []

    def start(role: str) -> CeleryProcess:
        process = CeleryProcess(role, tmp_path / f"{role}-{len(started)}.log", env)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


def completed_runs() -> list[ScheduledRun]:
    runs = ScheduledRun.objects.filter(state=RunState.LAUNCHED, launch__batch__commands__status="completed")
    return list(runs.order_by("slot"))


def test_a_schedule_fired_by_the_real_beat_runs_once_per_slot_across_a_beat_restart(
        hub, e2e_relay, start_agent, start_celery):
    relay = e2e_relay.relay
    relay.labels = {"role": "scheduled"}
    relay.save()
    start_agent(e2e_relay, hub)
    owner = User.objects.create_superuser("owner", "owner@example.com", "pw-owner-123456")
    template = JobTemplate.objects.create(
        name="Stamp", command='echo "word=$RELAYHUB_PARAM_WORD"', selector="role=scheduled", timeout_ms=10_000,
        parameters=[{"name": "word", "type": "string", "pattern": "[a-z]+", "required": True}])
    TemplateSchedule.objects.create(template=template, name="often", interval_seconds=EVERY_S,
                                    parameters={"word": "tick"}, owner=owner)
    worker, beat = start_celery("worker"), start_celery("beat")

    def ran(count: int):
        def check() -> bool:
            assert worker.proc.poll() is None, worker.output
            return len(completed_runs()) >= count
        return check

    wait_for(ran(2), 30, "two scheduled runs completed on the agent", interval=0.3)
    command = Command.objects.get(batch__launch__scheduled_run=completed_runs()[0])
    assert command.output == "word=tick\n" and command.exit_code == 0 and command.created_by == owner
    assert command.environment["RELAYHUB_PARAM_WORD"] == "tick"

    # Killed just after it sent one, beat never saved when it sent it: restarted, it sends it again at once.
    sent = ScheduledRun.objects.count()
    wait_for(lambda: ScheduledRun.objects.count() > sent, 10, "beat to send the next run", interval=0.1)
    beat.kill()
    before = len(completed_runs())
    start_celery("beat")
    wait_for(ran(before + 2), 30, "two more scheduled runs after beat's restart", interval=0.3)

    runs = list(ScheduledRun.objects.order_by("slot"))
    assert {run.state for run in runs} <= {RunState.LAUNCHED, RunState.SKIPPED_OVERLAP}, \
        [(run.state, run.reason) for run in runs]
    launched = [run for run in runs if run.state == RunState.LAUNCHED]
    # One batch of one command per launched slot, and no two slots closer than the interval: nothing ran twice.
    assert Command.objects.count() == len(launched) == len({run.launch.batch_id for run in launched})
    gaps = [later.slot - earlier.slot for earlier, later in zip(runs, runs[1:], strict=False)]
    assert min(gaps) >= timedelta(seconds=EVERY_S) - INTERVAL_TOLERANCE, gaps
    # Nothing lost either: the restart left no gap longer than the time beat was down plus an interval.
    assert max(gaps) < timedelta(seconds=EVERY_S + 15), gaps
