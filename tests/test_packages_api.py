"""Package commands (kind update_package) on the hub: names checked, the capability guard, the wire, the
relay's structured result stored and shown, permissions and reruns."""

from __future__ import annotations

import pytest

from assignments.models import RelayAssignment, RelayStatus
from commands import packages
from commands.models import Command
from tests.conftest import api_client_for, client_for, mark_online

pytestmark = pytest.mark.django_db

BAD_NAMES = ["-oAPT::Get::Trivial-Only=false", "--help", ";rm", "hello;rm -rf /", "$(x)", "`x`", "a b", "hello\nrm",
             "", "x|y", "../x", "x*", "hello=", "hello=-1", "hello:-x", "hello=1;rm", "é", "x" * 129]
OUTCOME = {"manager": "apt-get", "packages": [
    {"name": "hello", "action": "install", "oldVersion": None, "newVersion": "2.10-3"},
    {"name": "sl", "action": "install", "oldVersion": "5.02-1", "newVersion": "5.02-1"}]}


def able(*relays: RelayAssignment, capabilities=("local_cmd", "ssh", "run_options", "packages")) -> None:
    RelayStatus.objects.filter(relay__in=relays).update(capabilities=list(capabilities))
    mark_online(*relays)


def queue(api, **fields):
    body = {"machine_id": "machine-1", "kind": "update_package", "package_action": "install",
            "packages": ["hello", "sl"], **fields}
    return api.post("/api/v1/commands/", body, format="json")


def test_a_package_command_is_stored_and_reaches_the_relay_on_the_wire(admin_api, issued):
    able(issued.relay)
    response = queue(admin_api)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["command"], body["packages"], body["package_action"], body["package_result"]) == (
        "update_package", "package install hello sl", ["hello", "sl"], "install", None)
    assert body["timeout_ms"] == packages.DEFAULT_TIMEOUT_MS

    [listed] = client_for(issued).get("/relay/commands").json()["commands"]
    assert listed["packages"] == {"action": "install", "names": ["hello", "sl"]}
    # An agent that does not know the field runs this, and it fails saying why.
    assert listed["command"] == packages.WIRE_COMMAND
    answer = client_for(issued).post("/relay/commands/next", {"max": 5, "waitMs": 0}, format="json").json()
    assert answer["commands"][0]["packages"] == listed["packages"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_package_name_is_a_400_naming_it(admin_api, issued, name):
    able(issued.relay)
    response = queue(admin_api, packages=["hello", name])
    assert response.status_code == 400, response.json()
    problems = str(response.json()["fields"]["packages"])
    assert "is not a package name" in problems or "architecture" in problems or "version" in problems \
        or "blank" in problems or "at most 300" in problems
    assert not Command.objects.exists()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_hub_refuses_each_name_the_grammar_does(name):
    assert packages.name_problem(name) is not None


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"packages": []}, "packages", "at least one"),
    ({"package_action": ""}, "package_action", "install, remove or upgrade"),
    ({"package_action": "purge"}, "package_action", "valid choice"),
    ({"packages": ["hello", "hello=2"]}, "packages", "once"),
    ({"package_action": "remove", "packages": ["hello=2.10"]}, "packages", "without a version"),
    ({"command": "apt-get install hello"}, "command", "no command text"),
    ({"environment": {"DEBIAN_FRONTEND": "readline"}}, "kind", "takes no working directory"),
    ({"run_as": "deploy"}, "kind", "takes no working directory"),
    ({"kind": "command", "command": "uptime"}, "kind", "for kind update_package"),
    ({"kind": "probe"}, "kind", "valid choice"),
    ({"packages": [f"p{n}" for n in range(51)]}, "packages", "no more than 50"),
])
def test_malformed_package_commands_are_a_400_naming_the_field(admin_api, issued, fields, field, message):
    able(issued.relay)
    response = queue(admin_api, **fields)
    assert response.status_code == 400, response.json()
    assert message in str(response.json()["fields"][field]), response.json()


def test_a_relay_whose_agent_cannot_run_package_commands_is_refused_by_name(admin_api, issue_relay):
    new, old = issue_relay("m-1", "new-agent").relay, issue_relay("m-1", "old-agent").relay
    able(new)
    able(old, capabilities=("local_cmd", "ssh", "run_options"))
    response = queue(admin_api, machine_id="m-1")
    assert response.status_code == 400
    problems = str(response.json()["fields"]["packages"])
    assert "'old-agent'" in problems and "capability packages" in problems and "new-agent" not in problems
    # An ordinary command for the same machine is not affected.
    assert admin_api.post("/api/v1/commands/", {"machine_id": "m-1", "command": "uptime"},
                          format="json").status_code == 201


def test_running_a_package_command_takes_the_run_permission(issued, make_operator):
    able(issued.relay)
    viewer = api_client_for(make_operator("viewer", view=[issued.relay]))
    stranger = api_client_for(make_operator("stranger"))
    runner = api_client_for(make_operator("runner", run=[issued.relay]))
    assert queue(viewer).status_code == 403
    assert queue(stranger).status_code in (403, 404)
    assert not Command.objects.exists()
    assert queue(runner).status_code == 201


@pytest.mark.parametrize("route", ["result", "results"])
def test_the_relays_structured_result_is_stored_and_shown(admin_api, issued, route):
    able(issued.relay)
    command_id = queue(admin_api).json()["id"]
    relay = client_for(issued)
    [claimed] = relay.post("/relay/commands/next", {"max": 1, "waitMs": 0}, format="json").json()["commands"]
    relay.post("/relay/commands/started", {"commandId": claimed["_id"], "attempt": claimed["attempt"]}, format="json")
    result = {"commandId": claimed["_id"], "attempt": claimed["attempt"], "success": True, "exitCode": 0,
              "output": "Setting up hello (2.10-3) ...\n", "packageResult": OUTCOME}
    body = {"results": [result]} if route == "results" else result
    assert relay.post(f"/relay/commands/{route}", body, format="json").status_code == 200
    # An identical resend is the same result; a different one is refused.
    assert relay.post("/relay/commands/result", result, format="json").status_code == 200
    changed = {**result, "packageResult": {**OUTCOME, "manager": "dnf"}}
    assert relay.post("/relay/commands/result", changed, format="json").status_code == 409

    shown = admin_api.get(f"/api/v1/commands/{command_id}/").json()
    assert shown["status"] == "completed"
    assert shown["package_result"] == {"manager": "apt-get", "packages": [
        {"name": "hello", "action": "install", "old_version": None, "new_version": "2.10-3"},
        {"name": "sl", "action": "install", "old_version": "5.02-1", "new_version": "5.02-1"}]}


def test_a_malformed_structured_result_is_a_400_and_nothing_is_applied(admin_api, issued):
    able(issued.relay)
    queue(admin_api)
    relay = client_for(issued)
    [claimed] = relay.post("/relay/commands/next", {"max": 1, "waitMs": 0}, format="json").json()["commands"]
    bad = {"manager": "apt-get", "packages": [{"name": "hello", "action": "purge"}]}
    response = relay.post("/relay/commands/result", {"commandId": claimed["_id"], "attempt": claimed["attempt"],
                                                     "success": True, "packageResult": bad}, format="json")
    assert response.status_code == 400
    assert Command.objects.get().status == "claimed"


def test_the_admin_command_page_shows_the_packages_and_their_versions(admin_client_, admin_api, issued):
    able(issued.relay)
    command = Command.objects.get(pk=queue(admin_api).json()["id"])
    page = admin_client_.get(f"/admin/commands/command/{command.pk}/change/").content.decode()
    assert "Packages" in page and "hello sl" in page and "will show once the relay reports" in page

    Command.objects.filter(pk=command.pk).update(status="completed", package_result={
        "manager": "apt-get", "packages": [{"name": "hello", "action": "install", "old_version": None,
                                            "new_version": "2.10-3"}]})
    page = admin_client_.get(f"/admin/commands/command/{command.pk}/change/").content.decode()
    assert "hello: not installed → 2.10-3 (installed)" in page
    state = admin_client_.get(f"/admin/commands/command/{command.pk}/state/").json()
    assert state["facts"]["packages"] == "apt-get:\nhello: not installed → 2.10-3 (installed)"


def test_rerun_keeps_the_packages_and_their_check(admin_api, issued):
    able(issued.relay)
    first = queue(admin_api, package_action="remove").json()
    again = admin_api.post(f"/api/v1/commands/{first['id']}/rerun/", {}, format="json")
    assert again.status_code == 201, again.json()
    copy = Command.objects.get(pk=again.json()["id"])
    assert (copy.kind, copy.packages, copy.package_action, copy.command) == (
        "update_package", ["hello", "sl"], "remove", "package remove hello sl")

    able(issued.relay, capabilities=("local_cmd",))
    refused = admin_api.post(f"/api/v1/commands/{first['id']}/rerun/", {}, format="json")
    assert refused.status_code == 400 and "packages" in refused.json()["fields"]


def test_an_ordinary_command_is_on_the_wire_as_before(admin_api, issued):
    mark_online(issued.relay)
    response = admin_api.post("/api/v1/commands/", {"machine_id": "machine-1", "command": "uptime"}, format="json")
    assert response.status_code == 201 and response.json()["kind"] == "command"
    assert set(Command.objects.get().to_wire()) == {"_id", "command", "targetType", "timeoutMs", "createdAt"}
