"""An operator sees and runs only on the relays granted to them (guardian), everywhere in the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from commands import batches
from commands.models import Command
from configpush.models import ConfigPush
from credentials.models import CredentialInventoryItem

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(issue_relay, make_command, make_operator):
    a, b = issue_relay("machine-a", "relay-a").relay, issue_relay("machine-b", "relay-b").relay
    commands = {"a": make_command("machine-a", "echo on-a"), "b": make_command("machine-b", "echo on-b")}
    for relay in (a, b):
        CredentialInventoryItem.objects.create(relay=relay, credential_name=f"cred-{relay.name}",
                                               credential_type="password", storage_mode="relay_only",
                                               reported_at=timezone.now())
        ConfigPush.objects.create(relay=relay, push_type="allowed_commands", payload={"commands": [relay.name]})
    operator = make_operator(view=[a])
    client = Client()
    client.force_login(operator)
    return {"a": a, "b": b, "commands": commands, "operator": operator, "client": client}


def test_the_operator_sees_only_relay_a(world):
    client, a, b = world["client"], world["a"], world["b"]

    listed = client.get("/admin/assignments/relayassignment/")
    assert list(listed.context["cl"].result_list) == [a]
    assert client.get(f"/admin/assignments/relayassignment/{a.pk}/change/").status_code == 200
    hidden = client.get(f"/admin/assignments/relayassignment/{b.pk}/change/", follow=True)
    assert "relay-b" not in hidden.content.decode() and "doesn’t exist" in hidden.content.decode()


def test_the_operator_sees_only_the_commands_of_relay_a(world):
    client, commands = world["client"], world["commands"]

    listed = client.get("/admin/commands/command/")
    assert list(listed.context["cl"].result_list) == [commands["a"]]
    assert "echo on-b" not in listed.content.decode()
    assert client.get(f"/admin/commands/command/{commands['a'].pk}/change/").status_code == 200
    hidden = client.get(f"/admin/commands/command/{commands['b'].pk}/change/", follow=True)
    assert "echo on-b" not in hidden.content.decode()
    machines = dict(listed.context["cl"].filter_specs[1].lookup_choices)
    assert list(machines) == ["machine-a"]


def test_the_dashboard_counts_only_what_the_operator_sees(world):
    response = world["client"].get("/admin/")

    assert response.context["relay_counts"] == {"online": 0, "offline": 1, "disabled": 0}
    assert dict(response.context["status_counts"])["pending"] == 1
    assert "relay-b" not in response.content.decode()


def test_inventory_pushes_and_batches_of_relay_b_are_hidden(world, make_operator):
    client = world["client"]
    world["operator"].user_permissions.add(*_perms("view_configpush", "view_credentialinventoryitem"))
    mixed = batches.create(machine_ids=["machine-a", "machine-b"], command="id")
    only_a = batches.create(machine_ids=["machine-a"], command="id")

    inventory = client.get("/admin/credentials/credentialinventoryitem/").content.decode()
    pushes = client.get("/admin/configpush/configpush/")
    listed = client.get("/admin/commands/commandbatch/")

    assert "cred-relay-a" in inventory and "cred-relay-b" not in inventory
    assert [push.relay for push in pushes.context["cl"].result_list] == [world["a"]]
    assert list(listed.context["cl"].result_list) == [only_a]
    assert client.get(f"/admin/commands/commandbatch/{mixed.pk}/change/").status_code == 302


def test_viewing_is_not_running(world):
    client, a = world["client"], world["a"]

    assert client.get("/admin/commands/command/run/").status_code == 404
    response = client.post("/admin/commands/command/run/", _run_form("machine-a"))
    assert response.status_code == 404
    assert client.post(f"/admin/commands/command/{world['commands']['a'].pk}/cancel/").status_code == 302
    world["commands"]["a"].refresh_from_db()
    assert world["commands"]["a"].status == "pending"
    assert client.get(f"/admin/configpush/configpush/add/?relay={a.pk}").status_code == 403


def test_running_is_offered_only_where_granted(world, make_operator):
    runner = make_operator("runner", run=[world["a"]])
    client = Client()
    client.force_login(runner)

    form = client.get("/admin/commands/command/run/").context["form"]
    assert [value for value, _ in form.fields["machines"].choices] == ["machine-a"]
    refused = client.post("/admin/commands/command/run/", _run_form("machine-b"))
    assert refused.status_code == 200 and not Command.objects.filter(created_by=runner).exists()
    client.post("/admin/commands/command/",
                {"action": "cancel_commands", "_selected_action": [c.pk for c in world["commands"].values()]})
    assert Command.objects.get(pk=world["commands"]["a"].pk).status == "cancelled"
    assert Command.objects.get(pk=world["commands"]["b"].pk).status == "pending"
    # Running on a relay is not configuring it: no config push form for a runner.
    assert client.get("/admin/configpush/configpush/add/").status_code == 403


def test_config_pushes_are_offered_only_to_configurers(world, make_operator):
    client = Client()
    client.force_login(make_operator("configurer", configure=[world["a"]]))
    push_form = client.get("/admin/configpush/configpush/add/").context["adminform"].form
    assert list(push_form.fields["relay"].queryset) == [world["a"]]


def test_object_permissions_are_assigned_from_the_admin(world, admin_user_api):
    client = Client()
    client.force_login(admin_user_api)
    operator, b = world["operator"], world["b"]
    base = f"/admin/assignments/relayassignment/{b.pk}/permissions/"

    assert client.get(base).status_code == 200
    response = client.post(f"{base}user-manage/{operator.pk}/", {"permissions": ["view_relay", "run_command"]})

    assert response.status_code == 302
    operator = User.objects.get(pk=operator.pk)
    assert operator.has_perm("assignments.view_relay", b) and operator.has_perm("assignments.run_command", b)
    world["client"].force_login(operator)
    assert world["client"].get(f"/admin/assignments/relayassignment/{b.pk}/change/").status_code == 200


def test_operators_cannot_manage_object_permissions(world):
    response = world["client"].get(f"/admin/assignments/relayassignment/{world['a'].pk}/permissions/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def _perms(*codenames: str):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(codename__in=codenames)


def _run_form(machine: str) -> dict:
    return {"machines": [machine], "command": "id", "target_type": "local", "timeout_s": "30", "priority": "5"}
