"""A relay that looks alive but does nothing, with the real hub: the original relay CLI in its subscription
mode gets a 404 on its WebSocket endpoint and goes on sending heartbeats without ever fetching a command."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from assignments.models import RelayAssignment, RelayStatus
from assignments.signals import relay_not_fetching
from commands import fetching
from commands.models import Command
from tests.e2e.processes import finished, wait_for


def heartbeats_only(url: str, api_key: str, stop: threading.Event) -> dict:
    """What the original CLI does in subscription mode here: status, a refused WebSocket, then heartbeats."""
    session = requests.Session()
    session.headers["X-API-Key"] = api_key
    seen = {"websocket": session.get(f"{url}/relay/ws", timeout=5).status_code}
    session.post(f"{url}/relay/status", json={"capabilities": ["local_cmd"], "version": "1.4.0"}, timeout=5)
    while not stop.wait(0.5):
        session.post(f"{url}/relay/heartbeat", timeout=5)
    return seen


@pytest.fixture
def flagged():
    seen = []

    def receive(sender, relay, **kwargs):
        seen.append(relay.name)

    relay_not_fetching.connect(receive)
    yield seen
    relay_not_fetching.disconnect(receive)


@pytest.fixture
def webhook(settings):
    from notifications.models import Channel, Rule
    from tests.webhook_receiver import WebhookReceiver, eager_celery

    with eager_celery(), WebhookReceiver() as receiver:
        settings.RELAYHUB = {**settings.RELAYHUB, "NOTIFY_ALLOWED_HOSTS": [receiver.host]}
        channel = Channel(name="ops", kind="webhook", url=receiver.url)
        channel.set_secret("e2e-hook-secret")
        channel.save()
        Rule.objects.create(name="stuck relays", event="relay_not_fetching", channel=channel)
        yield receiver


def test_a_heartbeats_only_relay_is_flagged_and_notified_and_a_fetching_agent_is_not(
        hub, e2e_relay, start_agent, settings, flagged, webhook):
    settings.RELAYHUB = {**settings.RELAYHUB, "NOT_FETCHING_S": 2}
    silent = RelayAssignment.issue(machine_id="silent-machine", name="original cli")
    start_agent(e2e_relay, hub, "--long-poll-wait", "500")
    stop = threading.Event()
    result: dict = {}
    client = threading.Thread(target=lambda: result.update(heartbeats_only(hub.url, silent.api_key, stop)))
    client.start()
    try:
        wait_for(lambda: RelayStatus.objects.get(relay=silent.relay).is_online, 10, "the silent relay's heartbeat")
        waiting = Command.objects.create(machine_id="silent-machine", command="uptime")
        served = finished(Command.objects.create(machine_id="e2e-machine", command="echo fine"), timeout=20)
        assert served.status == "completed"
        time.sleep(2.5)  # past NOT_FETCHING_S: the silent relay has been heard from and fetched nothing

        with_commit = fetching.flag_not_fetching()
        assert [status.relay.name for status in with_commit] == ["original cli"]
        assert RelayStatus.objects.get(relay=silent.relay).is_not_fetching
        assert not RelayStatus.objects.get(relay=e2e_relay.relay).is_not_fetching
        assert Command.objects.get(pk=waiting.pk).status == "pending"
        relays = {r["name"]: r for r in requests.get(
            f"{hub.url}/api/v1/relays/", headers={"Authorization": f"Token {hub_token()}"}, timeout=5).json()["results"]}
        assert relays["original cli"]["not_fetching"] is True and relays["e2e relay"]["not_fetching"] is False
    finally:
        stop.set()
        client.join(10)
    assert result["websocket"] == 404
    assert flagged == ["original cli"]
    [notice] = webhook.wait_for(1)
    assert notice.signed_with("e2e-hook-secret")
    assert notice.json["type"] == "relay_not_fetching" and notice.json["relay"]["name"] == "original cli"


def hub_token() -> str:
    from django.contrib.auth.models import User

    from relayhub.web import operator_tokens

    return operator_tokens.issue(User.objects.create_superuser("e2e-admin", password="pw-e2e-admin-1"))
