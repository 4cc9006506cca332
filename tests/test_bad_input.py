"""Bad bodies get a JSON 4xx with a message: never a 500, never a partial write."""

import pytest

from commands.models import Command

POST_ROUTES = [
    "/relay/verify",
    "/relay/commands/claim",
    "/relay/commands/result",
    "/relay/commands/started",
    "/relay/commands/results",
    "/relay/status",
    "/relay/config-pushes/ack",
    "/relay/config/ack",
]

BODIES = [
    ("application/json", b"{not json"),
    ("application/json", b"[]"),
    ("application/json", b'"a string"'),
    ("application/json", b"null"),
    ("application/json", b"{}"),
    ("application/json", b'{"commandId": {"$gt": ""}, "success": "yes", "apiKey": 5, "pushId": 1.5}'),
    ("text/plain", b"hello"),
    ("application/x-www-form-urlencoded", b"commandId=1&success=true"),
    ("", b"\xff\xfe\x00garbage"),
]


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.parametrize("content_type,body", BODIES)
def test_junk_bodies_get_a_json_4xx(relay_client, make_command, path, content_type, body):
    command = make_command()
    response = relay_client.generic("POST", path, body, content_type=content_type)
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]
    assert Command.objects.get(pk=command.pk).status == "pending"


@pytest.mark.parametrize("bad_id", ["\u00b2", "\u0661\u0662", "9" * 30, "-1", ""])
@pytest.mark.parametrize("path,body", [
    ("/relay/commands/claim", {}),
    ("/relay/commands/result", {"success": True}),
    ("/relay/commands/started", {"attempt": 1}),
    ("/relay/commands/output", {"attempt": 1, "chunks": []}),
])
def test_ids_that_are_no_row_id_are_404(relay_client, make_command, path, body, bad_id):
    command = make_command()
    response = relay_client.post(path, {"commandId": bad_id, **body}, format="json")
    assert response.status_code in (400, 404), response.content
    assert response.json()["success"] is False
    assert Command.objects.get(pk=command.pk).status == "pending"


@pytest.mark.parametrize("bad_id", ["\u00b2", "9" * 30])
def test_odd_ids_elsewhere_are_404(relay_client, admin_api, bad_id):
    ack = relay_client.post("/relay/config-pushes/ack", {"pushId": bad_id, "success": True}, format="json")
    assert ack.status_code == 404
    rpc = admin_api.get(f"/api/v1/rpc/commands/{bad_id}")
    assert rpc.status_code == 404 and rpc.json()["found"] is False


def test_oversized_body_is_413(settings, relay_client):
    settings.RELAYHUB = {**settings.RELAYHUB, "MAX_BODY_BYTES": 1000}
    response = relay_client.post("/relay/status", {"capabilities": [], "version": "x" * 2000}, format="json")
    assert response.status_code == 413
    assert response.json() == {"success": False, "error": "request body exceeds 1000 bytes"}


@pytest.mark.parametrize("field,value", [
    ("success", "true"), ("success", 1), ("exitCode", "0"), ("exitCode", 1.5), ("durationMs", -1),
    ("output", 5), ("status", "completed"), ("attempt", 0), ("commandId", 1),
    ("exitCode", 2**31), ("exitCode", -(2**31) - 1), ("durationMs", 2**31), ("attempt", 10**30),
])
def test_result_fields_are_type_checked(relay, relay_client, make_command, field, value):
    command = make_command()
    command.claim(relay)
    body = {"commandId": str(command.pk), "success": True, field: value}
    response = relay_client.post("/relay/commands/result", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]
    assert Command.objects.get(pk=command.pk).status == "claimed"


@pytest.mark.parametrize("body", [
    {"attempt": 2**31}, {"commands": [{"attempt": 10**30}]},
])
def test_an_attempt_beyond_its_column_is_400(relay, relay_client, make_command, body):
    command = make_command()
    command.claim(relay)
    if "commands" in body:
        body = {"commands": [{"commandId": str(command.pk), **item} for item in body["commands"]]}
    else:
        body = {"commandId": str(command.pk), **body}
    response = relay_client.post("/relay/commands/started", body, format="json")
    assert response.status_code == 400 and "attempt" in response.json()["error"]
    assert Command.objects.get(pk=command.pk).status == "claimed"


def test_results_beyond_their_columns_are_refused_each(relay, relay_client, make_command):
    command = make_command()
    command.claim(relay)
    item = {"commandId": str(command.pk), "attempt": command.attempt, "success": True}
    response = relay_client.post("/relay/commands/results", {"results": [{**item, "exitCode": 10**30}]},
                                 format="json")
    [answer] = response.json()["results"]
    assert response.status_code == 200 and answer["status"] == 400 and "exitCode" in answer["error"]
    assert Command.objects.get(pk=command.pk).status == "claimed"


def test_an_output_offset_beyond_bigint_is_400(relay, relay_client, make_command):
    command = make_command()
    command.claim(relay)
    body = {"commandId": str(command.pk), "attempt": command.attempt,
            "chunks": [{"stream": "stdout", "offset": 2**63, "data": "x"}]}
    response = relay_client.post("/relay/commands/output", body, format="json")
    assert response.status_code == 400 and "offset" in response.json()["error"]


def test_an_inventory_time_beyond_any_date_is_400(relay_client):
    from credentials.inventory import LAST_MS

    item = {"credentialName": "db", "credentialType": "password", "storageMode": "relay_only"}
    for last, status in ((LAST_MS, 200), (LAST_MS + 1, 400), (10**20, 400)):
        body = {"capabilities": [], "credentials": [{**item, "lastUpdatedAt": last}]}
        response = relay_client.post("/relay/status", body, format="json")
        assert response.status_code == status, response.content
        assert status == 200 or response.json()["error"] == (
            f"credentials.0.lastUpdatedAt: Ensure this value is less than or equal to {LAST_MS}.")
