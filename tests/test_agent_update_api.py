"""update_agent commands on the hub: who may queue one, the capability guard, pins, the wire, batches."""

from __future__ import annotations

import pytest

from agentupdates import releases
from assignments.models import RelayStatus
from commands import agent_update, batches
from commands.models import Command, CommandBatch
from tests.conftest import api_client_for, client_for, mark_online
from tests.test_agent_releases import key_file, make_wheel, public_key  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(public_key):  # noqa: F811
    return releases.register(make_wheel("9.9.9"), "relay_agent-9.9.9-py3-none-any.whl")


def able(*relays, capabilities=("local_cmd", "ssh", "run_options", "packages", "self_update")) -> None:
    RelayStatus.objects.filter(relay__in=relays).update(capabilities=list(capabilities))
    mark_online(*relays)


def queue(api, **fields):
    return api.post("/api/v1/commands/", {"machine_id": "machine-1", "kind": "update_agent", "agent_version": "9.9.9",
                                          **fields}, format="json")


def test_an_update_reaches_the_relay_with_the_release_metadata(admin_api, issued, release):
    able(issued.relay)
    response = queue(admin_api)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["command"], body["timeout_ms"]) == (
        "update_agent", "agent update 9.9.9", agent_update.DEFAULT_TIMEOUT_MS)
    assert body["agent_release"]["sha256"] == release.sha256
    [wire] = client_for(issued).get("/relay/commands").json()["commands"]
    assert wire["agentUpdate"] == {"version": "9.9.9", "sha256": release.sha256, "signature": release.signature,
                                   "size": release.size, "url": "/relay/agent-releases/9.9.9/wheel"}
    # An agent without the extension runs this line, which fails and runs nothing.
    assert wire["command"] == agent_update.WIRE_COMMAND
    claimed = client_for(issued).post("/relay/commands/next", {"max": 1, "waitMs": 0}, format="json").json()
    assert claimed["commands"][0]["agentUpdate"]["signature"] == release.signature


def test_a_relay_without_the_capability_or_pinned_elsewhere_is_refused_by_name(admin_api, issued, release):
    able(issued.relay, capabilities=("local_cmd", "ssh"))
    response = queue(admin_api)
    assert response.status_code == 400
    assert "self_update" in str(response.json()) and "relay-1" in str(response.json())
    able(issued.relay)
    issued.relay.agent_version_pin = "0.1.0"
    issued.relay.save()
    response = queue(admin_api)
    assert response.status_code == 400 and "pinned to agent version 0.1.0" in str(response.json())
    issued.relay.agent_version_pin = "9.9.9"
    issued.relay.save()
    assert queue(admin_api).status_code == 201
    assert queue(admin_api, agent_version="1.0.0").status_code == 400
    assert queue(admin_api, agent_version="9.9.9", command="rm -rf /").status_code == 400
    assert not Command.objects.exclude(agent_release__isnull=True).exclude(agent_release__version="9.9.9").exists()


def test_a_run_only_user_may_not_update_an_agent_a_configurer_may(issued, release, make_operator):
    able(issued.relay)
    runner = api_client_for(make_operator("runner", run=[issued.relay]))
    response = queue(runner)
    assert response.status_code == 403, response.json()
    assert "configure_relay" in str(response.json())
    stranger = api_client_for(make_operator("stranger"))
    assert queue(stranger).status_code in (403, 404)
    assert not Command.objects.exists()
    # The pin is the configurer's too.
    pin = runner.patch(f"/api/v1/relays/{issued.relay.pk}/", {"agent_version_pin": "9.9.9"}, format="json")
    assert pin.status_code in (403, 404)
    configurer = make_operator("configurer", run=[issued.relay])
    from guardian.shortcuts import assign_perm
    assign_perm("assignments.configure_relay", configurer, issued.relay)
    api = api_client_for(configurer)
    assert api.patch(f"/api/v1/relays/{issued.relay.pk}/", {"agent_version_pin": "9.9.9"},
                     format="json").status_code == 200
    assert queue(api).status_code == 201


def test_a_batch_of_updates_carries_the_release_to_each_copy(admin_user_api, issue_relay, release):
    relays = [issue_relay(f"m-{n}", f"r-{n}").relay for n in range(3)]
    able(*relays)
    batch = batches.create(machine_ids=[r.machine_id for r in relays], created_by=admin_user_api,
                           max_concurrency="33%", max_errors=0, command=agent_update.command_text("9.9.9"),
                           agent_release=release.metadata(), timeout_ms=agent_update.DEFAULT_TIMEOUT_MS)
    [first] = batch.commands.all()
    assert first.kind == "update_agent" and first.agent_release["version"] == "9.9.9"
    assert first.to_wire()["agentUpdate"]["sha256"] == release.sha256


def test_the_relay_list_filters_by_version_and_updates_relays_as_a_batch(admin_client_, issue_relay, release):
    relays = [issue_relay(f"m-{n}", f"r-{n}").relay for n in range(4)]
    able(*relays)
    RelayStatus.objects.filter(relay__in=relays[:3]).update(version="0.1.0")
    page = admin_client_.get("/admin/assignments/relayassignment/?status__version=0.1.0").content.decode()
    assert "r-0" in page and "r-3" not in page
    counts = admin_client_.get("/admin/agentupdates/agentrelease/").content.decode()
    assert "0.1.0</a></td><td>3</td>" in counts
    form = admin_client_.post("/admin/assignments/relayassignment/", {
        "action": "update_agents", "_selected_action": [r.pk for r in relays]})
    assert form.status_code == 200 and "9.9.9" in form.content.decode()
    done = admin_client_.post("/admin/assignments/relayassignment/", {
        "action": "update_agents", "_selected_action": [r.pk for r in relays], "apply": "1", "version": "9.9.9",
        "max_concurrency": "25%", "max_errors": "0"})
    assert done.status_code == 302, done.content.decode()[:2000]
    batch = CommandBatch.objects.get()
    assert (batch.max_concurrency, batch.max_errors, batch.agent_release["version"]) == (1, 0, "9.9.9")
    [first] = batch.commands.all()
    assert first.kind == "update_agent"
    # The first failure stops the rollout.
    first.status = "failed"
    first.save()
    batches.advance(batch.pk)
    batch.refresh_from_db()
    assert batch.stopped and batch.commands.count() == 1


def test_a_label_pin_refuses_other_versions_for_every_relay_it_matches_new_ones_too(admin_api, issue_relay,
                                                                                     release):
    from agentupdates.models import AgentVersionPin

    prod = issue_relay("machine-1", "prod-1").relay
    prod.labels = {"env": "prod"}
    prod.save()
    able(prod)
    AgentVersionPin.objects.create(selector="env=prod", version="9.0.0", note="change freeze")
    response = queue(admin_api)
    assert response.status_code == 400
    assert "pinned to agent version 9.0.0 by the label pin 'env=prod' (change freeze)" in str(response.json())

    joined = issue_relay("machine-2", "prod-2").relay  # a relay that joins the label later is pinned too
    joined.labels = {"env": "prod", "site": "b"}
    joined.save()
    able(joined)
    assert queue(admin_api, machine_id="machine-2").status_code == 400
    joined.labels = {"env": "staging"}
    joined.save()
    assert queue(admin_api, machine_id="machine-2").status_code == 201, "a relay the selector no longer matches"


def test_label_pins_are_validated_and_changed_only_with_their_permission(admin_client_, make_operator):
    from django.test import Client

    from agentupdates.models import AgentVersionPin

    add = "/admin/agentupdates/agentversionpin/add/"
    refused = admin_client_.post(add, {"selector": "", "version": "1.0"})
    assert refused.status_code == 200 and not AgentVersionPin.objects.exists()
    bad = admin_client_.post(add, {"selector": "env in (", "version": "1.0"})
    assert bad.status_code == 200 and not AgentVersionPin.objects.exists()
    assert admin_client_.post(add, {"selector": "env=prod", "version": "1.0"}).status_code == 302
    assert AgentVersionPin.objects.get().created_by.username == "root"

    operator = Client()
    operator.force_login(make_operator("configurer"))
    assert operator.get(add).status_code == 403
    assert operator.post(add, {"selector": "env=dev", "version": "2.0"}).status_code == 403
    assert AgentVersionPin.objects.count() == 1
