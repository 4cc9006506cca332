"""A relay long-polling one hub process wakes when another process queues (SPEC §5)."""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis
import requests
from django.contrib.auth.models import User
from django.db import connection

from relayhub.web import operator_tokens

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def backend_env(backend: str) -> dict[str, str]:
    if backend == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        except redis.RedisError:
            pytest.skip("no Redis server reachable")
        return {"REDIS_URL": REDIS_URL, "RELAYHUB_NOTIFY_BACKEND": "redis"}
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY needs PostgreSQL")
    return {"RELAYHUB_NOTIFY_BACKEND": "postgres"}


def operator_token() -> str:
    user = User.objects.create_superuser("op", "op@example.com", "pw-op-123456")
    return operator_tokens.issue(user)


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_long_poll_on_one_replica_wakes_for_a_command_queued_through_another(start_hub, e2e_relay, backend):
    env = backend_env(backend)
    replica_a, replica_b = start_hub(env=env), start_hub(env=env)
    answer: dict = {}

    def long_poll() -> None:
        response = requests.post(f"{replica_a.url}/relay/commands/next", json={"max": 1, "waitMs": 20_000},
                                 headers={"X-API-Key": e2e_relay.api_key}, timeout=30)
        answer["commands"] = response.json()["commands"]
        answer["at"] = time.monotonic()

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(1.0)  # the poll is now waiting on replica A
    assert poller.is_alive()
    queued = requests.post(f"{replica_b.url}/api/v1/commands/", json={"machine_id": "e2e-machine", "command": "true"},
                           headers={"Authorization": f"Token {operator_token()}"}, timeout=10)
    queued_at = time.monotonic()  # committed and published by now
    assert queued.status_code == 201, queued.text
    poller.join(25)
    assert [c["_id"] for c in answer["commands"]] == [str(queued.json()["id"])]
    # With a broker the hub never polls the database while a relay waits: this was the broker.
    assert answer["at"] - queued_at < 1.0
    assert replica_b.proc.poll() is None
