"""Authentication and routing rules shared by every relay route (SPEC §3)."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from assignments.models import RelayAssignment
from relayhub import relay_urls
from relayhub.web import operator_tokens

HEADER_ROUTES = [
    ("get", "/relay/commands"),
    ("post", "/relay/commands/claim"),
    ("post", "/relay/commands/result"),
    ("post", "/relay/heartbeat"),
    ("post", "/relay/status"),
    ("get", "/relay/config-pushes"),
    ("get", "/relay/config/pending"),
    ("post", "/relay/config-pushes/ack"),
    ("post", "/relay/config/ack"),
    ("get", "/relay/shared-credentials"),
    ("get", "/relay/credentials/shared"),
    ("post", "/relay/commands/next"),
    ("post", "/relay/commands/started"),
    ("post", "/relay/commands/output"),
    ("post", "/relay/commands/results"),
    ("post", "/relay/commands/full-output"),
]
# Routes naming an object: an unknown one is a 404 by design (tests/test_agent_releases.py), so they are left out
# of the trailing-slash test, which takes a 404 for a missing route.
OBJECT_ROUTES = [("get", "/relay/agent-releases/0.0.0/wheel")]


def test_the_list_covers_every_relay_route():
    # + verify and hello, which take no key header
    assert len(HEADER_ROUTES) + len(OBJECT_ROUTES) + 2 == len(relay_urls.urlpatterns)


@pytest.mark.django_db
@pytest.mark.parametrize("method,path", HEADER_ROUTES + OBJECT_ROUTES)
@pytest.mark.parametrize("key", [None, "", "not-a-key", "rly_AAAAAAAAAAAA_" + "A" * 38])
def test_missing_malformed_or_unknown_key_is_401_json(method, path, key):
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_X_API_KEY=key)
    response = getattr(client, method)(path, {}, format="json")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["success"] is False and body["error"]


@pytest.mark.django_db(transaction=True)  # /next authenticates on another thread
@pytest.mark.parametrize("method,path", HEADER_ROUTES + OBJECT_ROUTES)
def test_disabled_relay_is_403(relay, relay_client, method, path):
    RelayAssignment.objects.filter(pk=relay.pk).update(enabled=False)
    response = getattr(relay_client, method)(path, {}, format="json")
    assert response.status_code == 403
    assert response.json() == {"success": False, "error": "relay is disabled"}


def test_unassigned_key_is_403(relay, relay_client):
    key = relay.api_key
    relay.delete()
    assert key.pk is not None
    response = relay_client.post("/relay/heartbeat")
    assert response.status_code == 403
    assert response.json()["success"] is False


@pytest.mark.parametrize("method,path", HEADER_ROUTES + [("post", "/relay/verify")])
def test_every_route_answers_with_and_without_trailing_slash(relay_client, method, path):
    plain = getattr(relay_client, method)(path, {}, format="json")
    slashed = getattr(relay_client, method)(path + "/", {}, format="json")
    assert plain.status_code != 404
    assert plain.status_code == slashed.status_code


@pytest.mark.django_db
@pytest.mark.parametrize("method,path", HEADER_ROUTES + [("post", "/relay/verify")])
def test_options_answers_without_a_key(method, path):
    response = APIClient().options(path)
    assert response.status_code in (200, 204)


def test_operator_token_on_a_relay_route_is_401(db):
    user = User.objects.create_superuser("op", password="pw-123456789")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {operator_tokens.issue(user)}")
    assert client.get("/relay/commands").status_code == 401


def test_relay_key_on_an_operator_route_is_403(relay_client):
    assert relay_client.get("/api/schema/").status_code == 403


@pytest.mark.django_db
def test_unknown_relay_path_is_a_json_404():
    response = APIClient().get("/relay/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"error": "not found", "success": False}


def test_any_authenticated_request_is_a_sign_of_life(relay, relay_client):
    assert not relay.is_online
    relay_client.get("/relay/commands")
    relay.status.refresh_from_db()
    assert relay.status.is_online
    assert relay.events.get().kind == "connected"


def test_a_relay_without_a_status_row_gets_one_on_its_next_request(relay, relay_client):
    from assignments.models import RelayStatus

    RelayStatus.objects.filter(relay=relay).delete()
    assert relay_client.post("/relay/heartbeat").status_code == 200
    assert RelayStatus.objects.get(relay=relay).last_heartbeat_at is not None
