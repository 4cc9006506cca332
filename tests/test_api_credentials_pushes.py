"""Shared credentials (value write-only) and config pushes over the REST API."""

import json

import pytest
from django.test import Client

from configpush.models import ConfigPush
from credentials import crypto
from credentials.models import SharedCredential
from tests.conftest import api_client_for

SECRET = "sentinel-credential-value-0xC0FFEE"


def create(client, relay, **extra):
    body = {"name": "db", "credential_type": "password", "target_host": "10.0.0.9", "value": SECRET,
            "assigned_relays": [str(relay.pk)], **extra}
    return client.post("/api/v1/shared-credentials/", body, format="json")


def test_value_is_write_only_and_pushed_encrypted_to_assigned_relays(admin_api, issued):
    response = create(admin_api, issued.relay)
    assert response.status_code == 201
    assert "value" not in response.json() and SECRET not in response.content.decode()
    listed = admin_api.get("/api/v1/shared-credentials/")
    detail = admin_api.get(f"/api/v1/shared-credentials/{response.json()['id']}/")
    for page in (listed, detail):
        assert SECRET not in page.content.decode()
    assert SharedCredential.objects.get().get_value() == SECRET
    [push] = ConfigPush.objects.filter(push_type="credential")
    assert push.relay_id == issued.relay.pk
    assert crypto.decrypt_from_hub(issued.transport_secret, push.payload["encryptedValue"]) == SECRET
    assert SECRET not in json.dumps(push.payload)


def test_updating_the_value_replaces_the_unsent_push(admin_api, issued):
    credential_id = create(admin_api, issued.relay).json()["id"]
    response = admin_api.patch(f"/api/v1/shared-credentials/{credential_id}/", {"value": "second-value"},
                               format="json")
    assert response.status_code == 200 and "value" not in response.json()
    [push] = ConfigPush.objects.filter(push_type="credential")
    assert crypto.decrypt_from_hub(issued.transport_secret, push.payload["encryptedValue"]) == "second-value"


def test_a_new_credential_needs_a_value(admin_api, relay):
    response = create(admin_api, relay, value="")
    assert response.status_code == 400 and "value" in response.json()["fields"]
    assert not SharedCredential.objects.exists()


def test_shared_credentials_need_the_model_permission(make_operator, relay):
    operator = api_client_for(make_operator(run=[relay]))
    assert create(operator, relay).status_code in (403, 404)
    assert operator.get("/api/v1/shared-credentials/").json()["results"] == []
    assert not SharedCredential.objects.exists()


def test_config_push_is_validated_per_type(admin_api, relay):
    ok = admin_api.post("/api/v1/config-pushes/", {"relay": str(relay.pk), "push_type": "ssh_targets",
                                                   "payload": {"targets": ["10.0.0.1:2222"]}}, format="json")
    assert ok.status_code == 201
    assert ok.json()["payload"] == {"targets": [{"host": "10.0.0.1", "port": 2222}]}
    bad = admin_api.post("/api/v1/config-pushes/", {"relay": str(relay.pk), "push_type": "metrics_interval",
                                                    "payload": {"intervalMs": 5}}, format="json")
    assert bad.status_code == 400
    assert "intervalMs must be an integer from 1000 to 86400000" in bad.json()["error"]
    assert ConfigPush.objects.count() == 1


def test_config_pushes_of_hidden_relays_are_invisible(make_operator, issue_relay):
    mine, hidden = issue_relay("m-1", "mine").relay, issue_relay("m-2", "hidden").relay
    ConfigPush.objects.create(relay=hidden, push_type="allowed_commands", payload={"commands": ["x"]})
    operator = api_client_for(make_operator(run=[mine]))
    assert operator.get("/api/v1/config-pushes/").json()["results"] == []
    response = operator.post("/api/v1/config-pushes/", {"relay": str(hidden.pk), "push_type": "allowed_commands",
                                                        "payload": {"commands": ["ls"]}}, format="json")
    assert response.status_code == 400 and "relay" in response.json()["fields"]
    assert ConfigPush.objects.count() == 1


@pytest.mark.django_db
def test_schema_documents_every_route(admin_api):
    schema = admin_api.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for route in ["/api/v1/commands/", "/api/v1/commands/{id}/cancel/", "/api/v1/commands/{id}/rerun/",
                  "/api/v1/commands/{id}/output/", "/api/v1/batches/", "/api/v1/relays/",
                  "/api/v1/shared-credentials/", "/api/v1/config-pushes/", "/api/v1/rpc/exec",
                  "/api/v1/rpc/commands/{command_id}", "/relay/verify/", "/relay/commands/claim/",
                  "/relay/commands/next/", "/relay/hello/", "/api/v1/approvals/", "/api/v1/approvals/{id}/",
                  "/api/v1/approvals/{id}/approve/", "/api/v1/approvals/{id}/reject/"]:
        assert route in paths, route
    assert set(paths["/api/v1/relays/{id}/"]) == {"get", "patch"}


def test_api_docs_load_nothing_from_other_hosts(admin_api):
    import re

    page = admin_api.get("/api/docs/")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.content.decode())
    assert urls and all(url.startswith("/") for url in urls), urls


def test_renaming_drops_the_unsent_push_under_the_old_name(admin_api, issued):
    credential_id = create(admin_api, issued.relay).json()["id"]
    response = admin_api.patch(f"/api/v1/shared-credentials/{credential_id}/", {"name": "db-renamed"}, format="json")
    assert response.status_code == 200
    assert [p.payload["name"] for p in ConfigPush.objects.filter(push_type="credential")] == ["db-renamed"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_are_for_staff_only(path):
    from django.contrib.auth.models import User

    client = api_client_for(User.objects.create_user("service", password="pw-service-123456"))
    assert client.get(path).status_code == 403
    signed_in = Client()
    signed_in.force_login(User.objects.get(username="service"))
    assert signed_in.get(path).status_code == 403
    staff = User.objects.create_user("staff", password="pw-staff-123456", is_staff=True)
    assert api_client_for(staff).get(path).status_code == 200
