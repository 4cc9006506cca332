"""Operator REST API: relays and commands, with per-relay permissions (SPEC §4, §7)."""

import pytest
from rest_framework.test import APIClient

from commands.models import Command, OutputChunk
from tests.conftest import api_client_for


@pytest.fixture
def two_relays(issue_relay):
    return issue_relay("machine-a", "relay-a").relay, issue_relay("machine-b", "relay-b").relay


def test_unauthenticated_is_401(db):
    response = APIClient().get("/api/v1/commands/")
    assert response.status_code == 401 and response.json()["error"]


def test_relay_key_on_the_operator_api_is_403(relay_client):
    assert relay_client.get("/api/v1/commands/").status_code == 403


def test_relays_list_shows_computed_status(admin_api, relay, relay_client):
    relay_client.post("/relay/status", {"capabilities": ["ssh"], "metrics": {"cpuPercent": 5}, "version": "1.2"},
                      format="json")
    [item] = admin_api.get("/api/v1/relays/").json()["results"]
    assert item["id"] == str(relay.pk)
    assert item["online"] is True and item["capabilities"] == ["ssh"] and item["metrics"] == {"cpuPercent": 5.0}


def test_operator_sees_only_granted_relays_and_their_commands(two_relays, make_operator, make_command):
    relay_a, relay_b = two_relays
    operator = api_client_for(make_operator(view=[relay_a]))
    mine, theirs = make_command("machine-a"), make_command("machine-b")
    assert [r["id"] for r in operator.get("/api/v1/relays/").json()["results"]] == [str(relay_a.pk)]
    assert operator.get(f"/api/v1/relays/{relay_b.pk}/").status_code == 404
    assert [c["id"] for c in operator.get("/api/v1/commands/").json()["results"]] == [mine.pk]
    for path in (f"/api/v1/commands/{theirs.pk}/", f"/api/v1/commands/{theirs.pk}/output/",
                 f"/api/v1/rpc/commands/{theirs.pk}"):
        assert operator.get(path).status_code == 404, path
    for path in (f"/api/v1/commands/{theirs.pk}/cancel/", f"/api/v1/commands/{theirs.pk}/rerun/"):
        assert operator.post(path, {}, format="json").status_code == 404, path
    assert Command.objects.get(pk=theirs.pk).status == "pending"


def test_queueing_needs_run_permission(two_relays, make_operator):
    relay_a, _ = two_relays
    viewer = api_client_for(make_operator("viewer", view=[relay_a]))
    runner = api_client_for(make_operator("runner", run=[relay_a]))
    body = {"machine_id": "machine-a", "command": "uptime", "queue_if_offline": True}
    assert viewer.post("/api/v1/commands/", body, format="json").status_code == 403
    response = runner.post("/api/v1/commands/", body, format="json")
    assert response.status_code == 201
    assert response.json()["created_by"] == "runner" and response.json()["status"] == "pending"
    assert runner.post("/api/v1/commands/", {**body, "machine_id": "machine-b"}, format="json").status_code == 403
    assert Command.objects.count() == 1


@pytest.mark.parametrize("body,field", [
    ({"command": "x", "machine_id": "m", "target_type": "ssh"}, "target_host"),
    ({"command": "x", "machine_id": "m", "target_host": "h"}, "target_type"),
    ({"command": "x", "machine_id": "m", "priority": 11}, "priority"),
    ({"command": "x", "machine_id": "m", "timeout_ms": 0}, "timeout_ms"),
    ({"command": "x", "machine_id": "m", "status": "completed", "exit_code": 0, "target_type": "telnet"},
     "target_type"),
    ({"machine_id": "m"}, "command"),
])
def test_bad_command_bodies_are_400_and_write_nothing(admin_api, body, field):
    response = admin_api.post("/api/v1/commands/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Command.objects.exists()


def test_status_and_exit_code_cannot_be_written(admin_api):
    response = admin_api.post("/api/v1/commands/", {"machine_id": "m", "command": "x", "status": "completed",
                                                   "exit_code": 0, "claimed_by": None,
                                                   "queue_if_offline": True}, format="json")
    assert response.status_code == 201
    command = Command.objects.get()
    assert (command.status, command.exit_code) == ("pending", None)


def test_list_filters(admin_api, admin_user_api, relay, make_command):
    done = make_command(command="done")
    done.claim(relay)
    done.finish(relay, 1, status="completed", exit_code=0)
    other = make_command(machine_id="elsewhere", created_by=admin_user_api)

    def ids(**params):
        return [c["id"] for c in admin_api.get("/api/v1/commands/", params).json()["results"]]

    assert ids(status="completed") == [done.pk]
    assert ids(machine_id="elsewhere") == [other.pk]
    assert ids(relay=str(relay.pk)) == [done.pk]
    assert ids(creator="root") == [other.pk]
    assert ids(search="done") == [done.pk]
    assert set(ids(created_after="2000-01-01T00:00:00Z")) == {done.pk, other.pk}
    assert ids(created_before="2000-01-01T00:00:00Z") == []
    assert admin_api.get("/api/v1/commands/", {"status": "bogus"}).status_code == 400


def test_pagination_is_capped(admin_api):
    Command.objects.bulk_create(Command(machine_id="m", command=f"echo {n}") for n in range(501))
    body = admin_api.get("/api/v1/commands/", {"limit": 10_000}).json()
    assert body["count"] == 501 and len(body["results"]) == 500


def test_cancel_pending_and_running(admin_api, relay, make_command):
    pending, running, done = make_command(), make_command(), make_command()
    running.claim(relay)
    done.withdraw()
    assert admin_api.post(f"/api/v1/commands/{pending.pk}/cancel/").json()["status"] == "cancelled"
    body = admin_api.post(f"/api/v1/commands/{running.pk}/cancel/").json()
    assert body["status"] == "claimed" and body["cancel_requested"] is True
    response = admin_api.post(f"/api/v1/commands/{done.pk}/cancel/")
    assert response.status_code == 409 and "cancelled" in response.json()["error"]


def test_rerun_with_overrides(admin_api, make_command):
    original = make_command(command="df -h", timeout_ms=1000, priority=7)
    response = admin_api.post(f"/api/v1/commands/{original.pk}/rerun/", {"machine_id": "m-2", "timeout_ms": 9000,
                                                                             "queue_if_offline": True},
                              format="json")
    assert response.status_code == 201
    rerun = Command.objects.get(pk=response.json()["id"])
    assert (rerun.command, rerun.machine_id, rerun.timeout_ms, rerun.priority) == ("df -h", "m-2", 9000, 7)
    assert rerun.pk != original.pk and rerun.status == "pending"


def test_output_can_be_followed_from_offsets(admin_api, relay, make_command):
    command = make_command()
    command.claim(relay)
    OutputChunk.objects.create(command=command, stream="stdout", offset=0, data="hello ")
    first = admin_api.get(f"/api/v1/commands/{command.pk}/output/").json()
    assert (first["stdout"], first["stdout_next_offset"], first["finished"]) == ("hello ", 6, False)
    OutputChunk.objects.create(command=command, stream="stdout", offset=6, data="world\n")
    OutputChunk.objects.create(command=command, stream="stderr", offset=0, data="warn")
    second = admin_api.get(f"/api/v1/commands/{command.pk}/output/", {"stdout_offset": 6}).json()
    assert (second["stdout"], second["stderr"], second["stdout_next_offset"]) == ("world\n", "warn", 12)
    command.finish(relay, 1, status="completed", output="hello world\n", stderr="warn", exit_code=0)
    last = admin_api.get(f"/api/v1/commands/{command.pk}/output/", {"stdout_offset": 12, "stderr_offset": 4}).json()
    assert (last["stdout"], last["stderr"], last["finished"], last["status"]) == ("", "", True, "completed")
    assert admin_api.get(f"/api/v1/commands/{command.pk}/output/", {"stdout_offset": -1}).status_code == 400


def test_rpc_exec_and_result_use_camel_case(admin_api, relay):
    response = admin_api.post("/api/v1/rpc/exec", {"machineId": "machine-1", "command": "df -h",
                                                   "targetType": "ssh", "targetHost": "10.0.0.5",
                                                   "targetPort": 22, "targetUsername": "ops", "timeoutMs": 5000},
                              format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and isinstance(body["commandId"], str)
    command = Command.objects.get(pk=int(body["commandId"]))
    assert (command.target_host, command.target_port, command.timeout_ms) == ("10.0.0.5", 22, 5000)
    assert admin_api.get(f"/api/v1/rpc/commands/{command.pk}").json() == {"found": True, "status": "pending"}
    command.claim(relay)
    command.finish(relay, 1, status="completed", output="ok\n", exit_code=0, duration_ms=4)
    assert admin_api.get(f"/api/v1/rpc/commands/{command.pk}").json() == {
        "found": True, "status": "completed", "output": "ok\n", "exitCode": 0, "durationMs": 4}
    missing = admin_api.get("/api/v1/rpc/commands/999999")
    assert missing.status_code == 404 and missing.json()["found"] is False


@pytest.mark.parametrize("body", [{}, {"machineId": 5, "command": "x", "targetType": "local"},
                                  {"machineId": "m", "command": "x", "targetType": "ssh"},
                                  {"machineId": "m", "command": "x", "targetType": "local", "timeoutMs": "5"}])
def test_rpc_exec_rejects_bad_bodies(admin_api, body):
    response = admin_api.post("/api/v1/rpc/exec", body, format="json")
    assert response.status_code == 400 and response.json()["error"]
    assert not Command.objects.exists()
