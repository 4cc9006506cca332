"""A relay learns of waiting config pushes from its long-poll (configPending), not only at its heartbeat."""

import time

import pytest

from configpush.models import ConfigPush

pytestmark = pytest.mark.django_db(transaction=True)
PUSH = {"push_type": "metrics_interval", "payload": {"intervalMs": 5000}}


def next_(client, **body):
    return client.post("/relay/commands/next", body, format="json")


def test_a_poll_after_a_push_was_queued_says_config_pending_within_half_a_second(relay, relay_client):
    assert "configPending" not in next_(relay_client, waitMs=0).json()
    ConfigPush.objects.create(relay=relay, **PUSH)
    started = time.monotonic()
    answer = next_(relay_client, waitMs=20_000).json()
    assert answer == {"commands": [], "configPending": True}
    assert time.monotonic() - started < 2.0  # held at most 0.5 s, not the 20 s asked for


def test_fetching_the_pushes_clears_it(relay, relay_client):
    ConfigPush.objects.create(relay=relay, **PUSH)
    assert next_(relay_client, waitMs=0).json().get("configPending") is True
    pushes = relay_client.get("/relay/config-pushes").json()["configPushes"]
    assert [p["pushType"] for p in pushes] == ["metrics_interval"]
    assert "configPending" not in next_(relay_client, waitMs=0).json()


def test_an_unacknowledged_push_sent_again_is_pending_again(relay, relay_client):
    push = ConfigPush.objects.create(relay=relay, **PUSH)
    relay_client.get("/relay/config-pushes")
    push.refresh_from_db()
    assert push.requeue_or_fail(max_tries=5)
    assert next_(relay_client, waitMs=0).json().get("configPending") is True


def test_another_relays_push_is_not_this_ones(relay, relay_client, issue_relay):
    other = issue_relay("machine-2", "relay-2").relay
    ConfigPush.objects.create(relay=other, **PUSH)
    assert "configPending" not in next_(relay_client, waitMs=0).json()
