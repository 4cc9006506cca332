"""Config pushes and shared credentials on the relay side (SPEC §3)."""

import json

import pytest
from django.core.exceptions import ValidationError

from configpush.models import ConfigPush
from credentials import crypto
from credentials.models import SharedCredential
from tests.conftest import client_for


@pytest.fixture
def push(relay):
    return ConfigPush.objects.create(relay=relay, push_type="allowed_commands", payload={"commands": ["uptime"]})


@pytest.mark.parametrize("path,key", [("/relay/config-pushes", "configPushes"), ("/relay/config/pending", "pushes")])
def test_pending_pushes_are_delivered_once_and_marked_sent(relay, relay_client, push, path, key):
    response = relay_client.get(path, {"relayId": str(relay.pk)})
    assert response.status_code == 200
    assert response.json() == {key: [{
        "_id": str(push.pk), "pushType": "allowed_commands", "payload": json.dumps({"commands": ["uptime"]}),
        "createdAt": int(push.created_at.timestamp() * 1000),
    }]}
    push.refresh_from_db()
    assert push.status == "sent" and push.sent_at is not None
    assert relay_client.get(path).json() == {key: []}


def test_pushes_of_another_relay_are_not_delivered(issue_relay, push):
    other = issue_relay(name="other")
    assert client_for(other).get("/relay/config-pushes").json() == {"configPushes": []}


def test_another_relays_id_is_403(issue_relay, relay_client, push):
    other = issue_relay(name="other").relay
    assert relay_client.get("/relay/config-pushes", {"relayId": str(other.pk)}).status_code == 403
    assert ConfigPush.objects.get(pk=push.pk).status == "pending"


@pytest.mark.parametrize("path", ["/relay/config-pushes/ack", "/relay/config/ack"])
@pytest.mark.parametrize("success,status", [(True, "acked"), (False, "failed")])
def test_ack_records_the_outcome(relay_client, push, path, success, status):
    relay_client.get("/relay/config-pushes")
    body = {"pushId": str(push.pk), "success": success, "errorMessage": "bad"}
    response = relay_client.post(path, body, format="json")
    assert response.status_code == 200 and response.json() == {"success": True}
    push.refresh_from_db()
    assert push.status == status and push.acked_at is not None
    assert push.error_message == ("" if success else "bad")


def test_ack_of_another_relays_push_is_404(issue_relay, push):
    other = issue_relay(name="other")
    response = client_for(other).post("/relay/config-pushes/ack", {"pushId": str(push.pk), "success": True},
                                      format="json")
    assert response.status_code == 404
    assert ConfigPush.objects.get(pk=push.pk).status == "pending"


@pytest.mark.parametrize("push_type,payload", [
    ("allowed_commands", {"commands": "uptime"}),
    ("metrics_interval", {"intervalMs": "fast"}),
    ("ssh_targets", {"targets": [{"host": "h", "port": 99999}]}),
    ("ssh_targets", {"targets": [{"host": "h", "hostKey": "not a key"}]}),
    ("credential", {"name": "x", "credentialType": "password", "encryptedValue": "plaintext"}),
    ("nonsense", {}),
])
def test_invalid_push_payloads_are_refused(relay, push_type, payload):
    with pytest.raises(ValidationError):
        ConfigPush.objects.create(relay=relay, push_type=push_type, payload=payload)


def test_ssh_targets_accept_the_originals_plain_strings(relay):
    push = ConfigPush.objects.create(relay=relay, push_type="ssh_targets",
                                     payload={"targets": ["10.0.0.1", "10.0.0.2:2222",
                                                          {"host": "h", "port": 22,
                                                           "hostKey": "ssh-ed25519 AAAAC3Nz"}]})
    assert push.payload["targets"] == [
        {"host": "10.0.0.1", "port": 22}, {"host": "10.0.0.2", "port": 2222},
        {"host": "h", "port": 22, "hostKey": "ssh-ed25519 AAAAC3Nz"},
    ]


@pytest.fixture
def credential(relay):
    credential = SharedCredential(name="db-password", credential_type="password", target_host="10.0.0.9")
    credential.set_value("hunter2-sentinel")
    credential.save()
    credential.assigned_relays.add(relay)
    return credential


@pytest.mark.parametrize("path", ["/relay/shared-credentials", "/relay/credentials/shared"])
def test_shared_credentials_are_encrypted_for_the_relay(issued, relay_client, credential, path):
    response = relay_client.get(path, {"relayId": str(issued.relay.pk)})
    assert response.status_code == 200
    [item] = response.json()["credentials"]
    assert set(item) == {"name", "credentialType", "targetHost", "encryptedValue", "updatedAt"}
    assert (item["name"], item["credentialType"], item["targetHost"]) == ("db-password", "password", "10.0.0.9")
    assert "hunter2-sentinel" not in response.content.decode()
    iv, tag, ciphertext = item["encryptedValue"].split(":")
    assert len(bytes.fromhex(iv)) == 12 and len(bytes.fromhex(tag)) == 16
    assert crypto.decrypt_from_hub(issued.transport_secret, item["encryptedValue"]) == "hunter2-sentinel"


def test_shared_credentials_go_only_to_assigned_relays(issue_relay, credential):
    other = issue_relay(name="other")
    assert client_for(other).get("/relay/shared-credentials").json() == {"credentials": []}


def test_another_relays_id_on_shared_credentials_is_403(issue_relay, relay_client, credential):
    other = issue_relay(name="other").relay
    assert relay_client.get("/relay/shared-credentials", {"relayId": str(other.pk)}).status_code == 403
