"""Limits of SPEC §7: throttling (429), body size (413), long-poll hold, output cap."""

import pytest
from rest_framework.test import APIClient

from relayhub.relay import throttling as relay_throttling
from relayhub.web import throttling
from tests.conftest import clear_cache


@pytest.fixture
def low_rates(settings, monkeypatch):
    rates = {"operator": "3/min", "relay": "3/min", "anon": "3/min"}
    monkeypatch.setattr(relay_throttling.RelayKeyThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(throttling.OperatorThrottle, "THROTTLE_RATES", rates)
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", rates)
    clear_cache()
    yield
    clear_cache()


def test_each_relay_key_is_throttled_on_its_own(low_rates, issue_relay):
    from tests.conftest import client_for

    first, second = client_for(issue_relay(name="a")), client_for(issue_relay(name="b"))
    assert [first.post("/relay/heartbeat").status_code for _ in range(4)] == [200, 200, 200, 429]
    response = first.get("/relay/commands")
    assert response.status_code == 429 and response.json()["success"] is False
    assert second.post("/relay/heartbeat").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_long_poll_counts_against_the_relay_key(low_rates, relay_client):
    for _ in range(3):
        assert relay_client.post("/relay/heartbeat").status_code == 200
    response = relay_client.post("/relay/commands/next", {"waitMs": 0}, format="json")
    assert response.status_code == 429 and response.json()["success"] is False


def test_each_operator_is_throttled(low_rates, admin_api):
    codes = [admin_api.get("/api/v1/commands/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert "throttled" in admin_api.get("/api/v1/relays/").json()["error"].lower()


def test_verify_is_throttled_per_client(low_rates, db):
    client = APIClient()
    codes = [client.post("/relay/verify", {"apiKey": "nope"}, format="json").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_oversized_operator_body_is_413(settings, admin_api):
    settings.RELAYHUB = {**settings.RELAYHUB, "MAX_BODY_BYTES": 100}
    response = admin_api.post("/api/v1/commands/", {"machine_id": "m", "command": "x" * 500}, format="json")
    assert response.status_code == 413 and response.json()["error"]


def test_a_throttled_relay_is_told_when_to_retry_and_is_let_in_next_window(low_rates, relay_client, monkeypatch):
    clock = [6000.0]  # the start of a one-minute window
    monkeypatch.setattr(relay_throttling.RelayKeyThrottle, "timer", staticmethod(lambda: clock[0]))
    assert [relay_client.post("/relay/heartbeat").status_code for _ in range(3)] == [200, 200, 200]
    clock[0] += 50
    refused = relay_client.post("/relay/commands/started", {"commandId": "1", "attempt": 1}, format="json")
    assert refused.status_code == 429 and refused.json()["success"] is False
    assert 1 <= int(refused["Retry-After"]) <= 11
    clock[0] += 10
    assert relay_client.post("/relay/heartbeat").status_code == 200


def test_rate_counters_carry_the_cache_key_prefix(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs a Redis server (REDIS_URL; .ci/run sets it)")
    import redis

    from relayhub.web.cache import count
    from tests.conftest import CACHE_KEY_PREFIX

    key = f"prefix-check-{id(settings)}"
    assert count(key, 60) == 1 and count(key, 60) == 2
    stored = redis.Redis.from_url(settings.REDIS_URL).get(f"{CACHE_KEY_PREFIX}:1:{key}")
    assert stored == b"2"
    clear_cache()
    assert count(key, 60) == 1
