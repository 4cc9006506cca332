"""GET /metrics: the bearer token, and the values before and after traffic, read by prometheus-client's parser."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from assignments.models import RelayAssignment, RelayStatus
from assignments.tasks import mark_lost_relays
from commands.models import Command
from configpush.models import ConfigPush
from tests.conftest import client_for, mark_online
from tests.test_asgi_stack import asgi_request

TOKEN = "metrics-token-0123456789abcdef"  # noqa: S105 - a test value

Samples = dict[tuple[str, frozenset], float]


@pytest.fixture
def token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(token: str = TOKEN) -> Samples:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# -- the token -----------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_configured_token_metrics_are_not_served(settings):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404
    assert "RELAYHUB_METRICS_TOKEN" in response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong-token", f"Token {TOKEN}", TOKEN,
                                    f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"])
def test_a_missing_or_wrong_token_is_refused_as_json_and_never_echoed(token, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = Client().get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) == {"error"}
    assert TOKEN not in response.content.decode()


@pytest.mark.django_db
def test_the_right_token_is_served_the_text_format(token):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {"relayhub_commands_queued", "relayhub_commands_finished", "relayhub_command_queue_to_claim_seconds",
            "relayhub_command_claim_to_finish_seconds", "relayhub_relays", "relayhub_longpolls_held",
            "relayhub_http_requests"} <= names


@pytest.mark.django_db
def test_wrong_tokens_count_as_failed_authentication(token, settings):
    settings.RELAYHUB = {**settings.RELAYHUB, "FAILED_AUTH_RATE": "3/min"}
    for _ in range(3):
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer guess").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer guess").status_code == 429
    refused = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1


# -- the values ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # counters count on commit
def test_values_follow_the_traffic(token, issue_relay, admin_api):
    issued = issue_relay()
    relay = issued.relay
    mark_online(relay)
    issue_relay("machine-2", "relay-offline")
    disabled = issue_relay("machine-3", "relay-disabled").relay
    RelayAssignment.objects.filter(pk=disabled.pk).update(enabled=False)
    before = scrape()

    queued = [admin_api.post("/api/v1/commands/", {"machine_id": "machine-1", "command": f"echo {n}"}, format="json")
              for n in range(4)]
    assert [response.status_code for response in queued] == [201] * 4
    ids = [response.json()["id"] for response in queued]
    client = client_for(issued)
    claimed = client.post("/relay/commands/next", {"max": 2}, format="json").json()["commands"]
    assert [command["_id"] for command in claimed] == [str(ids[0]), str(ids[1])]
    assert client.post("/relay/commands/claim", {"commandId": str(ids[2])}, format="json").status_code == 200
    for command, success in zip(claimed, (True, False)):
        response = client.post("/relay/commands/result", {
            "commandId": command["_id"], "attempt": command["attempt"], "success": success, "exitCode": 0 if success
            else 1, "output": "", "durationMs": 5}, format="json")
        assert response.status_code == 200, response.content
    assert client.get(f"/relay/commands/{ids[3]}").status_code == 404  # a path no route matches
    after = scrape()

    assert delta(before, after, "relayhub_commands_queued_total") == 4
    assert delta(before, after, "relayhub_commands_finished_total", status="completed") == 1
    assert delta(before, after, "relayhub_commands_finished_total", status="failed") == 1
    assert delta(before, after, "relayhub_command_queue_to_claim_seconds_count") == 3
    assert delta(before, after, "relayhub_command_queue_to_claim_seconds_bucket", le="+Inf") == 3
    assert delta(before, after, "relayhub_command_claim_to_finish_seconds_count") == 2
    assert 0 <= delta(before, after, "relayhub_command_claim_to_finish_seconds_sum") < 60
    # One pending command left on machine-1 (the fourth); the third is claimed, not pending.
    assert value(after, "relayhub_commands_pending", machine_id="machine-1") == 1
    oldest = Command.objects.get(pk=ids[3]).created_at
    age = value(after, "relayhub_commands_pending_oldest_age_seconds", machine_id="machine-1")
    assert 0 <= age <= (timezone.now() - oldest).total_seconds() + 1
    assert ("relayhub_commands_pending", frozenset({("machine_id", "machine-2")})) not in after
    assert value(after, "relayhub_relays", state="online") == 1
    assert value(after, "relayhub_relays", state="offline") == 1
    assert value(after, "relayhub_relays", state="disabled") == 1
    # Requests by route pattern, never by the raw path.
    assert delta(before, after, "relayhub_http_requests_total", route="api/v1/commands/", method="POST",
                 status="201") == 4
    assert delta(before, after, "relayhub_http_requests_total", route="relay/commands/next", method="POST",
                 status="200") == 1
    assert delta(before, after, "relayhub_http_requests_total", route="metrics", method="GET", status="200") == 1
    assert delta(before, after, "relayhub_http_requests_total", route="(relay|api)/", method="GET", status="404") == 1
    routes = {dict(labels)["route"] for name, labels in after if name == "relayhub_http_requests_total"}
    assert not [route for route in routes if any(f"/{pk}/" in route for pk in ids)]


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_pending_command_and_the_timeout_sweep_count_as_finished(token, issued, admin_api):
    mark_online(issued.relay)
    before = scrape()
    pending = admin_api.post("/api/v1/commands/", {"machine_id": "machine-1", "command": "sleep 1"}, format="json")
    assert admin_api.post(f"/api/v1/commands/{pending.json()['id']}/cancel/").status_code == 200
    stale = Command.objects.create(machine_id="machine-1", command="true")
    Command.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=1))
    from commands.tasks import expire_commands

    assert expire_commands() == 1
    after = scrape()
    assert delta(before, after, "relayhub_commands_queued_total") == 2
    assert delta(before, after, "relayhub_commands_finished_total", status="cancelled") == 1
    assert delta(before, after, "relayhub_commands_finished_total", status="timeout") == 1
    # Never claimed: no claim-to-finish time.
    assert delta(before, after, "relayhub_command_claim_to_finish_seconds_count") == 0


@pytest.mark.django_db(transaction=True)
def test_relay_events_and_config_pushes(token, issue_relay):
    issued = issue_relay()
    client = client_for(issued)
    before = scrape()
    assert client.post("/relay/heartbeat", {}, format="json").status_code == 200  # first sign of life: connected
    RelayStatus.objects.filter(pk=issued.relay.pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=1))
    mark_lost_relays()
    mark_lost_relays()  # lost once, counted once
    acked = ConfigPush.objects.create(relay=issued.relay, push_type="metrics_interval", payload={"intervalMs": 5000})
    failed = ConfigPush.objects.create(relay=issued.relay, push_type="metrics_interval", payload={"intervalMs": 6000})
    assert len(client.get("/relay/config-pushes").json()["configPushes"]) == 2
    for push, success in ((acked, True), (failed, False)):
        response = client.post("/relay/config-pushes/ack", {"pushId": str(push.pk), "success": success},
                               format="json")
        assert response.status_code == 200
    after = scrape()
    # Connected at the first heartbeat, and again (recovered) when it fetched its pushes after it was lost.
    assert delta(before, after, "relayhub_relay_connection_events_total", event="connected") == 2
    assert delta(before, after, "relayhub_relay_connection_events_total", event="heartbeat_lost") == 1
    assert delta(before, after, "relayhub_config_pushes_total", status="pending") == 2
    assert delta(before, after, "relayhub_config_pushes_total", status="sent") == 2
    assert delta(before, after, "relayhub_config_pushes_total", status="acked") == 1
    assert delta(before, after, "relayhub_config_pushes_total", status="failed") == 1


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_command_is_not_counted(token):
    from django.db import transaction

    before = scrape()
    with pytest.raises(RuntimeError), transaction.atomic():
        Command.objects.create(machine_id="machine-1", command="true")
        raise RuntimeError("rolled back")
    assert delta(before, scrape(), "relayhub_commands_queued_total") == 0


@pytest.mark.django_db(transaction=True)
def test_long_polls_held_while_they_wait(token, issued):
    mark_online(issued.relay)
    assert value(scrape(), "relayhub_longpolls_held") == 0
    answer: list = []
    poll = threading.Thread(target=lambda: answer.append(asgi_request(
        "POST", "/relay/commands/next", {"x-api-key": issued.api_key, "content-type": "application/json"},
        b'{"max": 1, "waitMs": 10000}')))
    poll.start()
    try:
        deadline = time.monotonic() + 10
        while value(scrape(), "relayhub_longpolls_held") != 1:
            assert time.monotonic() < deadline, "the long-poll never showed"
            time.sleep(0.05)
        Command.objects.create(machine_id="machine-1", command="true")  # wakes it
    finally:
        poll.join(15)
    assert answer and answer[0][0] == 200
    assert value(scrape(), "relayhub_longpolls_held") == 0


@pytest.mark.django_db
def test_the_grafana_dashboard_asks_only_for_metrics_the_hub_serves(token):
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).resolve().parents[1] / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    asked = {name for expr in exprs for name in re.findall(r"\brelayhub_\w+", expr)}
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    families = {family.name: family.type for family in text_string_to_metric_families(response.content.decode())}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    served = {name + suffix for name, kind in families.items() for suffix in suffixes[kind]}
    assert asked and asked <= served, asked - served
    assert {"relayhub_relays", "relayhub_commands_pending", "relayhub_command_queue_to_claim_seconds_bucket",
            "relayhub_http_requests_total", "relayhub_config_pushes_total"} <= asked
