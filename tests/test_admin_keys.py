"""A relay key and transport secret are shown once, in the response that made them, and never again."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.test import Client

from assignments import keys
from assignments.models import RelayAssignment
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def shown_key(page: str) -> tuple[str, str]:
    api_key = page.split('<code id="rh-api-key">')[1].split("</code>")[0]
    secret = page.split('<code id="rh-transport-secret">')[1].split("</code>")[0]
    return api_key, secret


def form_once(client: Client, url: str) -> str:
    """The one-time token of the key form at ``url``, as a browser would get it."""
    page = client.get(url).content.decode()
    return page.split('name="once" value="')[1].split('"')[0]


def everything_rendered_about(client: Client, relay: RelayAssignment) -> str:
    pages = [f"/admin/assignments/relayassignment/{relay.pk}/change/", "/admin/assignments/relayassignment/",
             f"/admin/assignments/relayassignment/{relay.pk}/history/", "/admin/", "/admin/assignments/relayapikey/"]
    body = "".join(client.get(page).content.decode() for page in pages)
    body += str(list(LogEntry.objects.values_list("change_message", "object_repr")))
    body += str(dict(client.session))
    return body


def test_adding_a_relay_shows_its_key_once(admin_client_):
    add = "/admin/assignments/relayassignment/add/"
    response = admin_client_.post(add, {"machine_id": "web-01", "name": "dc1", "once": form_once(admin_client_, add)})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    api_key, secret = shown_key(response.content.decode())
    relay = RelayAssignment.objects.get(machine_id="web-01")
    assert keys.parse(api_key).lookup == relay.api_key.lookup
    assert secret == relay.transport_secret()
    assert client_for(type("Issued", (), {"api_key": api_key})).post("/relay/heartbeat").status_code == 200
    assert LogEntry.objects.filter(object_id=str(relay.pk), action_flag=ADDITION).exists()

    later = everything_rendered_about(admin_client_, relay)
    assert api_key not in later and secret not in later
    assert keys.parse(api_key).secret not in later


def test_issuing_a_new_key_revokes_the_old_one_and_shows_the_new_one_once(admin_client_, issued):
    relay = issued.relay
    url = f"/admin/assignments/relayassignment/{relay.pk}/issue-key/"

    confirm = admin_client_.get(url)
    assert confirm.status_code == 200 and b"rh-api-key" not in confirm.content
    response = admin_client_.post(url, {"once": form_once(admin_client_, url)})

    api_key, secret = shown_key(response.content.decode())
    assert api_key != issued.api_key
    assert client_for(issued).post("/relay/heartbeat").status_code == 401
    assert client_for(type("Issued", (), {"api_key": api_key})).post("/relay/heartbeat").status_code == 200
    entry = LogEntry.objects.get(object_id=str(relay.pk), action_flag=CHANGE)
    assert entry.change_message == "Issued a new API key"
    later = everything_rendered_about(admin_client_, relay)
    assert api_key not in later and secret not in later


def test_reloading_the_shown_key_issues_no_other_key(admin_client_, issued):
    url = f"/admin/assignments/relayassignment/{issued.relay.pk}/issue-key/"
    form = {"once": form_once(admin_client_, url)}
    api_key, _ = shown_key(admin_client_.post(url, form).content.decode())

    resent = admin_client_.post(url, form, follow=True)  # what a reload of the key page sends

    page = resent.content.decode()
    assert "sent already" in page and "rh-api-key" not in page and api_key not in page
    assert resent.redirect_chain[-1][0] == f"/admin/assignments/relayassignment/{issued.relay.pk}/change/"
    assert client_for(type("Issued", (), {"api_key": api_key})).post("/relay/heartbeat").status_code == 200
    assert LogEntry.objects.filter(change_message="Issued a new API key").count() == 1


def test_reloading_the_added_relay_adds_no_other_relay(admin_client_):
    add = "/admin/assignments/relayassignment/add/"
    form = {"machine_id": "web-01", "name": "dc1", "once": form_once(admin_client_, add)}
    assert b"rh-api-key" in admin_client_.post(add, form).content

    resent = admin_client_.post(add, form, follow=True)

    assert "sent already" in resent.content.decode() and b"rh-api-key" not in resent.content
    assert RelayAssignment.objects.filter(machine_id="web-01").count() == 1


def test_a_key_form_without_its_token_issues_nothing(admin_client_, issued):
    url = f"/admin/assignments/relayassignment/{issued.relay.pk}/issue-key/"
    for forged in ({}, {"once": "made-up"}):
        assert b"rh-api-key" not in admin_client_.post(url, forged, follow=True).content
    assert client_for(issued).post("/relay/heartbeat").status_code == 200


def test_revoking_a_key_refuses_the_relay(admin_client_, issued):
    url = f"/admin/assignments/relayassignment/{issued.relay.pk}/revoke-key/"

    assert admin_client_.get(url).status_code == 200
    assert admin_client_.post(url).status_code == 302

    assert client_for(issued).post("/relay/heartbeat").status_code == 401
    assert LogEntry.objects.filter(change_message="Revoked the API key").count() == 1


def test_enable_and_disable_are_logged(admin_client_, issued):
    relay = issued.relay
    admin_client_.post(f"/admin/assignments/relayassignment/{relay.pk}/disable/")
    assert client_for(issued).post("/relay/heartbeat").status_code == 403
    admin_client_.post("/admin/assignments/relayassignment/",
                       {"action": "enable_relays", "_selected_action": [str(relay.pk)]})
    relay.refresh_from_db()
    assert relay.enabled
    assert list(LogEntry.objects.order_by("pk").values_list("change_message", flat=True)) == ["Disabled", "Enabled"]


def test_key_actions_need_the_change_permission(issued, make_operator):
    operator = make_operator(view=[issued.relay], run=[issued.relay])
    client = Client()
    client.force_login(operator)
    base = f"/admin/assignments/relayassignment/{issued.relay.pk}"

    assert client.get(f"{base}/change/").status_code == 200
    for action in ("issue-key", "revoke-key", "disable"):
        assert client.post(f"{base}/{action}/").status_code == 403
    assert client_for(issued).post("/relay/heartbeat").status_code == 200
