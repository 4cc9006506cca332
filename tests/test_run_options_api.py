"""Working directory, environment, run-as and scripts through the API, the wire and config pushes."""

from __future__ import annotations

import pytest

from assignments.models import RelayAssignment, RelayStatus
from commands.models import Command, CommandBatch
from configpush.models import ConfigPush
from tests.conftest import api_client_for, client_for, mark_online

pytestmark = pytest.mark.django_db

OPTIONS = {"working_directory": "/srv/app", "environment": {"RELEASE": "v1; rm -rf /", "EMPTY": ""},
           "run_as": "deploy"}


def able(*relays: RelayAssignment, capabilities=("local_cmd", "ssh", "run_options")) -> None:
    RelayStatus.objects.filter(relay__in=relays).update(capabilities=list(capabilities))
    mark_online(*relays)


def test_options_are_stored_and_reach_the_relay_on_the_wire(admin_api, issued):
    able(issued.relay)
    response = admin_api.post("/api/v1/commands/", {"machine_id": "machine-1", "command": "make deploy", **OPTIONS},
                              format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {name: body[name] for name in OPTIONS} == OPTIONS

    claimed = client_for(issued).post("/relay/commands/claim", {"commandId": str(body["id"])}, format="json")
    wire = claimed.json()["command"]
    assert wire["workingDirectory"] == "/srv/app"
    assert wire["environment"] == OPTIONS["environment"]
    assert wire["runAs"] == "deploy"
    assert wire["command"] == "make deploy"
    assert "script" not in wire


def test_the_long_poll_carries_the_options_too(admin_api, issued):
    able(issued.relay)
    admin_api.post("/api/v1/commands/", {"machine_id": "machine-1", "script": "print('hi')\n",
                                         "interpreter": "python3", "script_name": "hello.py"}, format="json")
    answer = client_for(issued).post("/relay/commands/next", {"max": 5, "waitMs": 0}, format="json").json()
    [wire] = answer["commands"]
    assert wire["script"] == "print('hi')\n" and wire["interpreter"] == "python3"
    assert wire["command"] == "python3 hello.py"


def test_a_command_without_options_is_on_the_wire_as_before(admin_api, issued):
    mark_online(issued.relay)  # an original relay: no run_options capability
    response = admin_api.post("/api/v1/commands/", {"machine_id": "machine-1", "command": "uptime"}, format="json")
    assert response.status_code == 201
    wire = Command.objects.get().to_wire()
    assert set(wire) == {"_id", "command", "targetType", "timeoutMs", "createdAt"}


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"command": "x", "working_directory": "relative"}, "working_directory", "absolute path"),
    ({"command": "x", "environment": {"1BAD": "x"}}, "environment", "not a variable name"),
    ({"command": "x", "environment": {"A-B": "x"}}, "environment", "not a variable name"),
    ({"command": "x", "environment": ["A=1"]}, "environment", "dictionary"),
    ({"command": "x", "environment": {"A": "a\u0000b"}}, "environment", "Null characters are not allowed"),
    ({"command": "x", "run_as": "-u root"}, "run_as", "user name"),
    ({"command": "x", "run_as": "Root"}, "run_as", "user name"),
    ({"command": "x", "script": "echo"}, "command", "not both"),
    ({"command": ""}, "command", "give a command or a script"),
    ({"command": "x", "interpreter": "bash"}, "interpreter", "runs a script"),
    ({"script": "x", "interpreter": "ruby"}, "interpreter", "valid choice"),
    ({"script": "x", "script_name": "../../etc/passwd"}, "script_name", "letters, digits"),
    ({"command": "x", "environment": {f"V{n}": "x" for n in range(101)}}, "environment", "at most 100"),
])
def test_bad_options_are_a_400_naming_the_field(admin_api, issued, fields, field, message):
    able(issued.relay)
    response = admin_api.post("/api/v1/commands/", {"machine_id": "machine-1", **fields}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert message in str(response.json()["fields"][field])
    assert not Command.objects.exists()


def test_a_relay_whose_agent_does_not_know_the_options_is_refused_by_name(admin_api, issue_relay):
    new, old = issue_relay("m-1", "new-agent").relay, issue_relay("m-1", "old-agent").relay
    able(new)
    able(old, capabilities=("local_cmd", "ssh"))

    response = admin_api.post("/api/v1/commands/", {"machine_id": "m-1", "command": "id", "run_as": "deploy"},
                              format="json")
    assert response.status_code == 400
    assert "'old-agent'" in str(response.json()["fields"]["run_options"])
    assert "new-agent" not in str(response.json()["fields"]["run_options"])

    old.enabled = False
    old.save()
    assert admin_api.post("/api/v1/commands/", {"machine_id": "m-1", "command": "id", "run_as": "deploy"},
                          format="json").status_code == 201


def test_rerun_keeps_the_options_and_their_check(admin_api, issued):
    able(issued.relay)
    first = admin_api.post("/api/v1/commands/", {"machine_id": "machine-1", "script": "echo hi", "interpreter": "bash",
                                                 **OPTIONS}, format="json").json()
    again = admin_api.post(f"/api/v1/commands/{first['id']}/rerun/", {}, format="json")
    assert again.status_code == 201
    copy = Command.objects.get(pk=again.json()["id"])
    assert (copy.script, copy.interpreter, copy.run_as, copy.environment) == (
        "echo hi", "bash", "deploy", OPTIONS["environment"])

    able(issued.relay, capabilities=("local_cmd",))  # downgraded since
    refused = admin_api.post(f"/api/v1/commands/{first['id']}/rerun/", {}, format="json")
    assert refused.status_code == 400 and "run_options" in refused.json()["fields"]


def test_a_batch_carries_the_options_to_every_copy(admin_api, issue_relay):
    relays = [issue_relay(f"m-{n}", f"r-{n}").relay for n in range(3)]
    able(*relays)
    response = admin_api.post("/api/v1/batches/", {"machine_ids": ["m-0", "m-1", "m-2"], "script": "echo $A",
                                                   "environment": {"A": "1"}, "working_directory": "/tmp"},
                              format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["script"] == "echo $A" and response.json()["interpreter"] == "sh"
    assert CommandBatch.objects.get().command == "sh script"
    copies = Command.objects.all()
    assert len(copies) == 3
    assert all(c.to_wire()["environment"] == {"A": "1"} and c.to_wire()["script"] == "echo $A" for c in copies)


def test_a_batch_to_an_old_agent_is_refused(admin_api, issue_relay):
    relay = issue_relay("m-0", "r-0").relay
    able(relay, capabilities=("local_cmd",))
    response = admin_api.post("/api/v1/batches/", {"machine_ids": ["m-0"], "command": "id", "run_as": "x"},
                              format="json")
    assert response.status_code == 400 and "run_options" in response.json()["fields"]
    assert not CommandBatch.objects.exists()


def test_run_as_policy_is_a_validated_config_push(admin_api, relay):
    ok = admin_api.post("/api/v1/config-pushes/", {"relay": str(relay.pk), "push_type": "run_as",
                                                   "payload": {"users": ["deploy", "postgres", "deploy"]}},
                        format="json")
    assert ok.status_code == 201
    assert ok.json()["payload"] == {"users": ["deploy", "postgres"]}
    for bad in ({"users": ["-oProxyCommand=x"]}, {"users": "root"}, {"users": ["root"], "extra": 1}):
        response = admin_api.post("/api/v1/config-pushes/", {"relay": str(relay.pk), "push_type": "run_as",
                                                             "payload": bad}, format="json")
        assert response.status_code == 400
    assert ConfigPush.objects.count() == 1


def test_being_able_to_run_on_a_relay_does_not_let_one_change_its_run_as_policy(make_operator, relay):
    runner = api_client_for(make_operator(run=[relay]))
    response = runner.post("/api/v1/config-pushes/", {"relay": str(relay.pk), "push_type": "run_as",
                                                      "payload": {"users": ["root"]}}, format="json")
    assert response.status_code in (400, 403, 404)
    assert not ConfigPush.objects.exists()
