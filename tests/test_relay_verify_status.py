"""verify, heartbeat and status (SPEC §3)."""

import pytest
from rest_framework.test import APIClient

from assignments.models import MetricSample, RelayAssignment, RelayStatus
from credentials.models import CredentialInventoryItem


def verify(key):
    return APIClient().post("/relay/verify", {"apiKey": key}, format="json")


def test_verify_returns_the_assignment(issued):
    response = verify(issued.api_key)
    assert response.status_code == 200
    relay = issued.relay
    assert response.json() == {"valid": True, "assignmentId": str(relay.pk), "machineId": relay.machine_id,
                               "name": relay.name}


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["nope", "rly_AAAAAAAAAAAA_" + "A" * 38])
def test_verify_of_a_bad_key_is_401(key):
    response = verify(key)
    assert response.status_code == 401
    assert response.json()["valid"] is False and response.json()["error"]


def test_verify_of_a_disabled_relay_is_403(issued):
    RelayAssignment.objects.filter(pk=issued.relay.pk).update(enabled=False)
    response = verify(issued.api_key)
    assert response.status_code == 403
    assert response.json() == {"valid": False, "error": "relay is disabled"}


def test_heartbeat_marks_the_relay_online(relay, relay_client):
    response = relay_client.post("/relay/heartbeat")
    assert response.json() == {"success": True, "cancelCommandIds": []}
    assert RelayAssignment.objects.select_related("status").get(pk=relay.pk).is_online


def test_heartbeat_reports_cancel_requests(relay, relay_client, make_command):
    command = make_command()
    command.claim(relay)
    command.cancel()
    assert relay_client.post("/relay/heartbeat").json()["cancelCommandIds"] == [str(command.pk)]


def test_heartbeat_treats_relay_id_as_status_does(issue_relay, relay, relay_client):
    other = issue_relay("machine-2", "other").relay
    refused = relay_client.post("/relay/heartbeat", {"relayId": str(other.pk)}, format="json")
    assert refused.status_code == 403 and refused.json() == {"success": False,
                                                             "error": "relayId does not belong to this API key"}
    assert relay_client.post("/relay/heartbeat", {"relayId": 7}, format="json").status_code == 400
    assert relay_client.post("/relay/heartbeat", {"relayId": str(relay.pk)}, format="json").status_code == 200


def test_online_is_computed_from_the_last_heartbeat(settings, relay, relay_client):
    relay_client.post("/relay/heartbeat")
    settings.RELAYHUB = {**settings.RELAYHUB, "ONLINE_THRESHOLD_S": 0}
    assert not RelayStatus.objects.get(pk=relay.pk).is_online


def status_body(relay, **fields):
    return {
        "relayId": str(relay.pk),
        "capabilities": ["ssh", "local_cmd", "perf_metrics"],
        "metrics": {"cpuPercent": 12.5, "memoryPercent": 40, "diskPercent": 70.1, "extraMetric": 1},
        "version": "2.0.2",
        "hostname": "relay-host",
        "platform": "linux",
        "credentials": [
            {"credentialName": "db", "credentialType": "password", "targetHost": "10.0.0.9",
             "storageMode": "relay_only", "lastUpdatedAt": 1_700_000_000_000},
            {"credentialName": "web", "credentialType": "ssh_key", "storageMode": "shared",
             "lastUpdatedAt": 1_700_000_000_000},
        ],
        **fields,
    }


def test_status_stores_everything_and_counts_as_a_heartbeat(relay, relay_client):
    response = relay_client.post("/relay/status", status_body(relay), format="json")
    assert response.status_code == 200
    assert response.json() == {"success": True, "pendingConfigPushes": 0, "sharedCredentialsCount": 0}
    status = RelayStatus.objects.get(pk=relay.pk)
    assert status.capabilities == ["local_cmd", "perf_metrics", "ssh"]
    assert status.metrics == {"cpuPercent": 12.5, "memoryPercent": 40.0, "diskPercent": 70.1}
    assert (status.version, status.hostname, status.platform) == ("2.0.2", "relay-host", "linux")
    assert status.is_online
    assert MetricSample.objects.filter(relay=relay).count() == 1
    assert set(relay.inventory.values_list("credential_name", flat=True)) == {"db", "web"}


def test_status_replaces_the_inventory(relay, relay_client):
    relay_client.post("/relay/status", status_body(relay), format="json")
    body = status_body(relay)
    body["credentials"] = body["credentials"][1:]
    relay_client.post("/relay/status", body, format="json")
    assert list(relay.inventory.values_list("credential_name", flat=True)) == ["web"]


@pytest.mark.parametrize("secret_field", ["value", "password", "privateKey", "key"])
def test_inventory_item_carrying_a_secret_is_400_and_nothing_is_written(relay, relay_client, secret_field):
    relay_client.post("/relay/status", status_body(relay), format="json")
    body = status_body(relay, version="9.9.9")
    body["credentials"] = [{**body["credentials"][0], secret_field: "s3cret-value"}]
    response = relay_client.post("/relay/status", body, format="json")
    assert response.status_code == 400
    assert "s3cret-value" not in response.content.decode()
    assert RelayStatus.objects.get(pk=relay.pk).version == "2.0.2"
    assert CredentialInventoryItem.objects.filter(relay=relay).count() == 2


def test_status_with_another_relays_id_is_403(relay, relay_client, issue_relay):
    other = issue_relay(name="other").relay
    response = relay_client.post("/relay/status", status_body(relay, relayId=str(other.pk)), format="json")
    assert response.status_code == 403
    assert not other.inventory.exists() and not relay.inventory.exists()


def test_status_relay_id_is_optional(relay, relay_client):
    body = status_body(relay)
    del body["relayId"]
    assert relay_client.post("/relay/status", body, format="json").status_code == 200


@pytest.mark.parametrize("patch", [
    {"relayId": 5},
    {"capabilities": ["teleport"]},
    {"capabilities": "ssh"},
    {"metrics": {"cpuPercent": "high"}},
    {"credentials": [{"credentialName": "x", "credentialType": "cookie", "storageMode": "shared"}]},
    {"credentials": [{"credentialName": "x", "credentialType": "password", "storageMode": "shared"}] * 2},
])
def test_bad_status_reports_are_400(relay, relay_client, patch):
    response = relay_client.post("/relay/status", status_body(relay, **patch), format="json")
    assert response.status_code == 400
    assert response.json()["success"] is False
