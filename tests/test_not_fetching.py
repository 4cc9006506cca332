"""Relays that look alive but do nothing: heard from, yet no fetch while commands wait for their machine."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from assignments.models import ConnectionEvent, RelayEvent, RelayStatus
from assignments.signals import relay_not_fetching
from commands import fetching
from commands.models import Command
from tests.conftest import mark_online
from tests.test_relay_extensions import next_

pytestmark = pytest.mark.django_db
LONG_AGO = timedelta(minutes=5)


@pytest.fixture
def silent(relay):
    """Online for five minutes, never fetched, with a command waiting as long."""
    mark_online(relay)
    RelayEvent.objects.create(relay=relay, kind=ConnectionEvent.CONNECTED, created_at=timezone.now() - LONG_AGO)
    Command.objects.create(machine_id=relay.machine_id, command="uptime", created_at=timezone.now() - LONG_AGO)
    return relay


@pytest.fixture
def signals():
    seen = []

    def receive(sender, relay, last_fetch_at, since, **kwargs):
        seen.append((relay.pk, last_fetch_at))

    relay_not_fetching.connect(receive)
    yield seen
    relay_not_fetching.disconnect(receive)


def test_a_relay_heard_from_but_not_fetching_is_flagged_once(silent, signals, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert [s.pk for s in fetching.flag_not_fetching()] == [silent.pk]
        assert fetching.flag_not_fetching() == [], "once per episode"
    assert signals == [(silent.pk, None)]
    status = RelayStatus.objects.get(pk=silent.pk)
    assert status.is_not_fetching


def test_its_next_fetch_clears_the_flag(silent, relay_client):
    fetching.flag_not_fetching()
    next_(relay_client, waitMs=0)
    status = RelayStatus.objects.get(pk=silent.pk)
    assert status.not_fetching_since is None and status.last_fetch_at is not None


@pytest.mark.parametrize("case", ["fetched recently", "nothing waits long", "busy", "just connected", "offline"])
def test_relays_that_are_fine_are_not_flagged(relay, relay_client, case, make_command):
    mark_online(relay)
    connected_at = timezone.now() - (timedelta(seconds=10) if case == "just connected" else LONG_AGO)
    RelayEvent.objects.create(relay=relay, kind=ConnectionEvent.CONNECTED, created_at=connected_at)
    waited = timedelta(seconds=10) if case == "nothing waits long" else LONG_AGO
    Command.objects.create(machine_id=relay.machine_id, command="uptime", created_at=timezone.now() - waited)
    if case == "fetched recently":
        relay_client.get("/relay/commands")
    if case == "busy":
        running = make_command()
        assert running.claim(relay)
    if case == "offline":
        RelayStatus.objects.filter(pk=relay.pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=1))
    assert fetching.flag_not_fetching() == []


def test_the_api_the_admin_and_metrics_show_it(silent, admin_api, admin_client_, settings):
    fetching.flag_not_fetching()
    [relay] = admin_api.get("/api/v1/relays/").json()["results"]
    assert relay["not_fetching"] is True and relay["online"] is True
    assert "not fetching" in admin_client_.get("/admin/assignments/relayassignment/").content.decode()
    page = admin_client_.get(f"/admin/assignments/relayassignment/{silent.pk}/change/").content.decode()
    assert 'id="rh-not-fetching"' in page and "subscription mode" in page
    assert "Relays not fetching commands" in admin_client_.get("/admin/").content.decode()
    settings.METRICS_TOKEN = "m-token"
    scraped = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer m-token").content.decode()
    assert "relayhub_relays_not_fetching 1.0" in scraped
