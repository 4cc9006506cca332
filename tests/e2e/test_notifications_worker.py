"""A real Celery worker and beat on real Redis: the sweeps raise events, the worker signs and sends them to a
receiver on 127.0.0.1, and a delivery answered 500 is tried again after its back-off."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from assignments.models import RelayStatus
from commands.models import Command
from notifications.models import Channel, Delivery, Rule
from tests.e2e.processes import CeleryProcess, wait_for
from tests.webhook_receiver import WebhookReceiver

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "whsec-e2e-0123456789abcdef"


@pytest.fixture
def receiver():
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def celery(tmp_path, receiver):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis server reachable")
    env = {"CELERY_BROKER_URL": REDIS_URL, "CELERY_TASK_DEFAULT_QUEUE": f"test-{uuid.uuid4().hex}",
           "RELAYHUB_SWEEP_EVERY_S": "1", "RELAYHUB_TIMEOUT_GRACE_S": "0", "RELAYHUB_ONLINE_THRESHOLD_S": "3",
           "RELAYHUB_VAR_DIR": str(tmp_path), "RELAYHUB_NOTIFY_ALLOWED_HOSTS": receiver.host,
           "RELAYHUB_NOTIFY_RETRY_BASE_S": "1"}
    processes = [CeleryProcess(role, tmp_path / f"{role}.log", env).start() for role in ("worker", "beat")]
    yield processes
    for process in processes:
        process.stop()


def test_the_worker_sends_signed_events_and_retries_after_a_500(celery, receiver, e2e_relay, transactional_db,
                                                               settings):
    settings.RELAYHUB = {**settings.RELAYHUB, "NOTIFY_ALLOWED_HOSTS": [receiver.host]}
    channel = Channel(name="hook", kind="webhook", url=receiver.url)
    channel.set_secret(SECRET)
    channel.full_clean()
    channel.save()
    for event in ("relay_heartbeat_lost", "command_failed"):
        Rule.objects.create(name=event, event=event, channel=channel)
    receiver.statuses = [500]
    relay = e2e_relay.relay
    command = Command.objects.create(machine_id=relay.machine_id, command="sleep 999", timeout_ms=500)
    assert command.claim(relay)
    RelayStatus.objects.filter(pk=relay.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=1),
                                                   last_connection_event="connected")

    def sent() -> bool:
        for process in celery:
            assert process.proc.poll() is None, process.output
        return len(receiver.received) >= 3

    wait_for(sent, 60, "three requests at the receiver", interval=0.2)
    first, *rest = receiver.received
    assert first.answered == 500 and all(item.answered == 200 for item in rest)
    assert all(item.signed_with(SECRET) for item in receiver.received)
    assert any(item.body == first.body for item in rest), "the request answered 500 was sent again"
    assert sorted(item.json["type"] for item in rest) == ["command_failed", "relay_heartbeat_lost"]
    failed = next(item.json for item in rest if item.json["type"] == "command_failed")
    assert failed["command"]["id"] == command.pk and failed["command"]["status"] == "timeout"
    wait_for(lambda: Delivery.objects.count() == 3, 10, "three deliveries recorded")
    assert sorted(Delivery.objects.values_list("attempt", "status")) == [(1, "retrying"), (1, "succeeded"),
                                                                        (2, "succeeded")]
