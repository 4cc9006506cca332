"""Failed authentication is limited per client address: 429 with Retry-After, then even a right key waits (finding 7)."""

import pytest
from rest_framework.test import APIClient

from relayhub.checks import failed_auth_problems
from relayhub.web import cache, failed_auth, operator_tokens

WRONG_KEY = "rly_AAAAAAAAAAAA_" + "A" * 38
OTHER_ADDRESS = "10.1.2.3"
ADDRESSES = ["127.0.0.1", OTHER_ADDRESS, "203.0.113.7", "203.0.113.8"]


@pytest.fixture
def limit_of_three(settings, monkeypatch):
    settings.RELAYHUB = {**settings.RELAYHUB, "FAILED_AUTH_RATE": "3/min"}
    # One window for the whole test: a minute boundary passing mid-test would reset the count.
    now = failed_auth.clock()
    monkeypatch.setattr(failed_auth, "clock", lambda: now)
    yield
    for address in ADDRESSES:
        failed_auth.forget(address)


def relay_call(client: APIClient, route: str, key: str, **extra):
    if route == "verify":
        return client.post("/relay/verify", {"apiKey": key}, format="json", **extra)
    client.credentials(HTTP_X_API_KEY=key)
    if route == "drf":
        return client.get("/relay/commands", **extra)
    if route == "async":
        return client.post("/relay/heartbeat", **extra)
    return client.post("/relay/commands/next", {"waitMs": 0}, format="json", **extra)


def assert_refused(response, envelope: dict) -> None:
    assert response.status_code == 429, response.content
    assert 1 <= int(response["Retry-After"]) <= 60
    body = response.json()
    assert failed_auth.MESSAGE in body["error"]
    assert body.items() >= envelope.items()


@pytest.mark.django_db(transaction=True)  # /next authenticates on another thread
@pytest.mark.parametrize("route,envelope", [
    ("drf", {"success": False}), ("async", {"success": False}), ("next", {"success": False}),
    ("verify", {"valid": False}),
])
def test_wrong_relay_keys_are_limited_per_address(limit_of_three, issued, route, envelope):
    client = APIClient()
    assert [relay_call(client, route, WRONG_KEY).status_code for _ in range(3)] == [401] * 3
    assert_refused(relay_call(client, route, WRONG_KEY), envelope)
    # Past the limit the right key waits too, or guessing would go on unhindered.
    assert_refused(relay_call(client, route, issued.api_key), envelope)
    assert relay_call(APIClient(), route, issued.api_key, REMOTE_ADDR=OTHER_ADDRESS).status_code == 200


def test_malformed_and_revoked_keys_count_as_failures(limit_of_three, issue_relay):
    revoked = issue_relay(name="revoked")
    revoked.relay.revoke_key()
    client = APIClient()
    codes = [relay_call(client, "drf", key).status_code for key in ("not-a-key", revoked.api_key, "", "x")]
    assert codes == [401, 401, 401, 429]


def test_requests_without_any_key_are_not_counted(limit_of_three, db):
    assert [APIClient().post("/relay/heartbeat").status_code for _ in range(6)] == [401] * 6


def test_wrong_operator_tokens_are_limited_per_address(limit_of_three, admin_user_api):
    token = operator_tokens.issue(admin_user_api)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)
    assert [client.get("/api/v1/relays/").status_code for _ in range(3)] == [401] * 3
    assert_refused(client.get("/api/v1/relays/"), {})
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert_refused(client.get("/api/v1/relays/"), {})
    assert client.get("/api/v1/relays/", REMOTE_ADDR=OTHER_ADDRESS).status_code == 200


def test_relay_keys_and_tokens_share_one_count(limit_of_three, db):
    relay, operator = APIClient(), APIClient()
    relay.credentials(HTTP_X_API_KEY=WRONG_KEY)
    operator.credentials(HTTP_AUTHORIZATION="Token nope")
    codes = [relay.get("/relay/commands").status_code, operator.get("/api/v1/relays/").status_code,
             relay.post("/relay/heartbeat").status_code, operator.get("/api/v1/commands/").status_code]
    assert codes == [401, 401, 401, 429]


def test_the_address_is_let_in_when_the_window_passes(limit_of_three, issued, monkeypatch):
    clock = [6000.0]  # the start of a one-minute window
    monkeypatch.setattr(failed_auth, "clock", lambda: clock[0])
    client = APIClient()
    assert [relay_call(client, "async", WRONG_KEY).status_code for _ in range(4)] == [401, 401, 401, 429]
    clock[0] += 30
    refused = relay_call(client, "async", issued.api_key)
    assert refused.status_code == 429 and 30 <= int(refused["Retry-After"]) <= 31
    clock[0] += 30
    assert relay_call(client, "async", issued.api_key).status_code == 200


def test_successful_requests_never_touch_the_failure_count(limit_of_three, issued, admin_api, monkeypatch):
    counted = []
    real_count = cache.count
    monkeypatch.setattr(cache, "count", lambda key, ttl: counted.append(key) or real_count(key, ttl))
    relay = APIClient()
    for _ in range(5):
        assert relay_call(relay, "async", issued.api_key).status_code == 200
        assert relay_call(relay, "drf", issued.api_key).status_code == 200
        assert admin_api.get("/api/v1/relays/").status_code == 200
    assert not [key for key in counted if key.startswith("failed_auth")]


def test_failures_are_counted_in_the_shared_cache_with_its_prefix(limit_of_three, db, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs a Redis server (REDIS_URL; .ci/run sets it)")
    import redis

    from tests.conftest import CACHE_KEY_PREFIX

    client = APIClient()
    relay_call(client, "drf", WRONG_KEY)
    relay_call(client, "drf", WRONG_KEY)
    window = int(failed_auth.clock() // 60)
    stored = redis.Redis.from_url(settings.REDIS_URL).get(f"{CACHE_KEY_PREFIX}:1:failed_auth:127.0.0.1:{window}")
    assert stored == b"2"


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(limit_of_three, db):
    client = APIClient()
    codes = [relay_call(client, "drf", WRONG_KEY, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
             for n in range(4)]
    assert codes == [401, 401, 401, 429]


def test_behind_a_trusted_proxy_each_client_counts_alone(limit_of_three, settings, issued):
    settings.RELAYHUB = {**settings.RELAYHUB, "TRUSTED_PROXY_COUNT": 1}
    client = APIClient()
    first = [relay_call(client, "drf", WRONG_KEY, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code for _ in range(4)]
    assert first == [401, 401, 401, 429]
    # What the client put in front of the proxy's own entry is not believed.
    spoofed = relay_call(client, "drf", issued.api_key, HTTP_X_FORWARDED_FOR="203.0.113.7, 203.0.113.8")
    assert spoofed.status_code == 200


@pytest.mark.parametrize("meta,address", [
    ({"REMOTE_ADDR": "192.0.2.1"}, "192.0.2.1"),
    ({"REMOTE_ADDR": "2001:db8:1:2:3:4:5:6"}, "2001:db8:1:2::/64"),
    ({"REMOTE_ADDR": "2001:db8:1:2:ffff::1"}, "2001:db8:1:2::/64"),
    ({"REMOTE_ADDR": "::ffff:192.0.2.9"}, "192.0.2.9"),
    ({"REMOTE_ADDR": ""}, "unknown"),
    ({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, "192.0.2.1"),
])
def test_client_address(meta, address):
    assert failed_auth.client_address(meta) == address


@pytest.mark.parametrize("hops,forwarded,address", [
    (1, "198.51.100.1", "198.51.100.1"), (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),
    (2, "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"), (2, "198.51.100.1", "192.0.2.1"),
])
def test_client_address_behind_proxies(settings, hops, forwarded, address):
    settings.RELAYHUB = {**settings.RELAYHUB, "TRUSTED_PROXY_COUNT": hops}
    assert failed_auth.client_address({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": forwarded}) == address


def test_the_settings_are_checked():
    assert failed_auth_problems("60/min", 0) == []
    assert [p.id for p in failed_auth_problems("sixty", 0)] == ["relayhub.E004"]
    assert [p.id for p in failed_auth_problems("0/min", 0)] == ["relayhub.E004"]
    assert [p.id for p in failed_auth_problems("60/fortnight", -1)] == ["relayhub.E004", "relayhub.E005"]
