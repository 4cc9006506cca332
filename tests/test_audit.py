"""The audit trail: an entry for each kind of operator action, with who, from where and what, and never a
secret value; append-only; read and exported only with ``view_auditentry``."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from guardian.shortcuts import assign_perm, remove_perm

from assignments.models import RelayAssignment, RelayStatus
from audit.models import Action, AuditEntry
from commands.models import Command, CommandBatch
from credentials.models import SharedCredential
from runbooks.models import JobTemplate
from tests.conftest import api_client_for, mark_online
from tests.test_admin_keys import form_once, shown_key

pytestmark = pytest.mark.django_db
SENTINEL = "audit-sentinel-secret-7f3a"
WRONG_PASSWORD = "audit-sentinel-wrong-password-51c"


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


def the_whole_trail() -> str:
    return json.dumps([entry.as_record() for entry in AuditEntry.objects.all()], default=str)


@pytest.fixture
def online(issued):
    RelayStatus.objects.filter(relay=issued.relay).update(capabilities=["local_cmd", "run_options"])
    mark_online(issued.relay)
    return issued.relay


def test_sign_in_sign_out_and_a_failed_sign_in_are_recorded_without_the_password(admin_user_api):
    client = Client(REMOTE_ADDR="203.0.113.7")
    refused = client.post("/admin/login/", {"username": "root", "password": WRONG_PASSWORD})
    assert refused.status_code == 200  # the form again, with its error
    assert client.post("/admin/login/", {"username": "root", "password": "pw-root-123456"}).status_code == 302
    assert client.post("/admin/logout/").status_code in (200, 302)

    failed, = entries(Action.LOGIN_FAILED)
    assert failed.object_repr == "root" and failed.actor is None and failed.address == "203.0.113.7"
    login, = entries(Action.LOGIN)
    logout, = entries(Action.LOGOUT)
    for entry in (login, logout):
        assert entry.actor_id == admin_user_api.pk and entry.actor_name == "root"
        assert entry.address == "203.0.113.7" and entry.source == "admin"
    assert WRONG_PASSWORD not in the_whole_trail() and "pw-root-123456" not in the_whole_trail()


def test_queue_cancel_and_rerun_through_the_api_name_the_operator_and_address(make_operator, online):
    user = make_operator("alice", run=[online])
    client = api_client_for(user)
    client.defaults["REMOTE_ADDR"] = "198.51.100.4"
    queued = client.post("/api/v1/commands/", {"machine_id": online.machine_id, "command": "sleep 5"},
                         format="json").json()
    assert client.post(f"/api/v1/commands/{queued['id']}/cancel/").status_code == 200
    rerun = client.post(f"/api/v1/commands/{queued['id']}/rerun/", {}, format="json").json()

    first, again = entries(Action.COMMAND_QUEUE)
    assert (first.object_type, first.object_id, again.object_id) == ("command", str(queued["id"]), str(rerun["id"]))
    assert first.detail["command"] == "sleep 5" and first.detail["machine"] == online.machine_id
    cancel, = entries(Action.COMMAND_CANCEL)
    redo, = entries(Action.COMMAND_RERUN)
    assert redo.object_id == str(queued["id"]) and redo.detail["new_command"] == rerun["id"]
    for entry in (first, again, cancel, redo):
        assert (entry.actor_name, entry.source, entry.address) == ("alice", "api", "198.51.100.4")


def test_a_batch_queued_and_stopped_is_one_entry_each(admin_api, online):
    batch = admin_api.post("/api/v1/batches/", {"machine_ids": [online.machine_id], "command": "sleep 9"},
                           format="json").json()
    assert admin_api.post(f"/api/v1/batches/{batch['id']}/cancel/").status_code == 200

    queued, = entries(Action.BATCH_QUEUE)
    assert queued.object_id == str(batch["id"]) and queued.detail["targets"] == 1
    stopped, = entries(Action.BATCH_CANCEL)
    assert stopped.detail["cancelled_targets"] == 1
    assert not entries(Action.COMMAND_QUEUE) and not entries(Action.COMMAND_CANCEL), "the copies are the batch's"


def test_a_launch_and_its_approval_are_recorded_with_secret_parameters_masked(make_operator, online):
    credential = SharedCredential(name="deploy-token", credential_type="password")
    credential.set_value(SENTINEL)
    credential.save()
    online.labels = {"role": "web"}
    online.save()
    template = JobTemplate.objects.create(
        name="Deploy", command="deploy", selector="role=web", requires_approval=True,
        parameters=[{"name": "token", "type": "secret", "credential": "deploy-token"},
                    {"name": "version", "type": "string"}])
    launcher, approver = make_operator("launcher"), make_operator("approver")
    assign_perm("runbooks.launch_template", launcher, template)
    assign_perm("runbooks.approve_template", approver, template)

    launched = api_client_for(launcher).post(f"/api/v1/templates/{template.pk}/launch/",
                                             {"parameters": {"version": "1.2"}}, format="json")
    assert launched.status_code == 201, launched.json()
    approval = CommandBatch.objects.get().approval
    decided = api_client_for(approver).post(f"/api/v1/approvals/{approval.pk}/approve/", {"reason": "planned"},
                                            format="json")
    assert decided.status_code == 200

    launch, = entries(Action.TEMPLATE_LAUNCH)
    assert launch.actor_name == "launcher" and launch.object_repr == "Deploy"
    assert launch.detail["parameters"]["version"] == "1.2"
    approved, = entries(Action.APPROVAL_APPROVE)
    assert approved.actor_name == "approver" and approved.object_type == "batch"
    assert approved.detail["reason"] == "planned" and approved.detail["requested_by"] == "launcher"
    assert SENTINEL not in the_whole_trail()


def test_a_rejection_is_recorded_with_its_reason(make_operator, online):
    online.requires_approval = True
    online.save()
    requester, approver = make_operator("req", run=[online]), make_operator("boss", approve=[online])
    queued = api_client_for(requester).post("/api/v1/commands/", {"machine_id": online.machine_id,
                                                                  "command": "reboot"}, format="json").json()
    approval = Command.objects.get(pk=queued["id"]).approval
    api_client_for(approver).post(f"/api/v1/approvals/{approval.pk}/reject/", {"reason": "not now"}, format="json")

    rejected, = entries(Action.APPROVAL_REJECT)
    assert (rejected.actor_name, rejected.object_type, rejected.object_id) == ("boss", "command", str(queued["id"]))
    assert rejected.detail["reason"] == "not now"


def test_key_issue_and_revoke_never_record_the_key(admin_client_, issued):
    relay = issued.relay
    url = f"/admin/assignments/relayassignment/{relay.pk}/issue-key/"
    api_key, secret = shown_key(admin_client_.post(url, {"once": form_once(admin_client_, url)}).content.decode())
    revoke = f"/admin/assignments/relayassignment/{relay.pk}/revoke-key/"
    admin_client_.post(revoke, {"once": form_once(admin_client_, revoke)})

    *_, reissued = entries(Action.KEY_ISSUE)
    assert reissued.actor_name == "root" and reissued.source == "admin" and reissued.object_id == str(relay.pk)
    assert reissued.detail["replaces_key_number"] is not None
    revoked, = entries(Action.KEY_REVOKE)
    assert revoked.actor_name == "root"
    trail = the_whole_trail()
    for value in (api_key, secret, issued.api_key, api_key.split(".")[-1], issued.api_key.split(".")[-1]):
        assert value not in trail


def test_credentials_created_changed_and_deleted_are_recorded_without_the_value(admin_api, issued):
    made = admin_api.post("/api/v1/shared-credentials/", {
        "name": "db", "credential_type": "password", "target_host": "10.0.0.9", "value": SENTINEL,
        "assigned_relays": [str(issued.relay.pk)]}, format="json").json()
    admin_api.patch(f"/api/v1/shared-credentials/{made['id']}/", {"value": SENTINEL + "-2"}, format="json")
    admin_api.patch(f"/api/v1/shared-credentials/{made['id']}/", {"target_host": "10.0.0.10"}, format="json")
    admin_api.delete(f"/api/v1/shared-credentials/{made['id']}/")

    created, = entries(Action.CREDENTIAL_CREATE)
    assert created.actor_name == "root" and created.object_repr == "db" and created.source == "api"
    changes = entries(Action.CREDENTIAL_CHANGE)
    assert {"relays": "assigned", "which": [str(issued.relay)]} in [entry.detail for entry in changes]
    assert {"changed": [], "rotated": True} in [entry.detail for entry in changes]
    assert {"changed": ["target_host"], "rotated": False} in [entry.detail for entry in changes]
    assert entries(Action.CREDENTIAL_DELETE)
    assert SENTINEL not in the_whole_trail()
    pushes = entries(Action.CONFIG_PUSH)
    assert pushes and all(entry.detail["type"] == "credential" for entry in pushes)


def test_a_config_push_is_recorded_by_type_and_field_names(admin_api, issued):
    response = admin_api.post("/api/v1/config-pushes/", {"relay": str(issued.relay.pk), "push_type": "allowed_commands",
                                                         "payload": {"commands": ["uptime"]}}, format="json")
    assert response.status_code == 201, response.json()
    push, = entries(Action.CONFIG_PUSH)
    assert push.actor_name == "root" and push.detail["type"] == "allowed_commands"
    assert push.detail["fields"] == ["commands"]


def test_permission_changes_are_recorded_with_who_changed_them(admin_client_, issued):
    user = User.objects.create_user("bob", password="pw-bob-123456")
    group = Group.objects.create(name="operators")
    client = admin_client_
    page = f"/admin/auth/user/{user.pk}/change/"
    form = client.get(page).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(username="bob", is_staff="on", groups=[group.pk], date_joined_0="2026-01-01",
                date_joined_1="00:00:00", user_permissions=[Permission.objects.get(codename="view_auditentry").pk])
    data.pop("is_superuser", None)
    data.pop("last_login", None)
    response = client.post(page, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    group.permissions.add(Permission.objects.get(codename="view_relay"))
    assign_perm("assignments.run_command", user, issued.relay)
    remove_perm("assignments.run_command", user, issued.relay)

    changes = entries(Action.PERMISSION_CHANGE)
    details = [entry.detail for entry in changes]
    assert {"change": "flags", "set": {"is_staff": True}} in details
    assert any(d.get("relation") == "group membership" and d["items"] == ["operators"] for d in details)
    assert any(d.get("relation") == "user permissions" and "view audit entry" in d["items"][0] for d in details)
    assert any(d.get("relation") == "group permissions" for d in details)
    assert [d["change"] for d in details if d.get("permission") == "run_command"] == ["grant", "revoke"]
    by_admin = [entry for entry in changes if entry.source == "admin"]
    assert by_admin and all(entry.actor_name == "root" for entry in by_admin)


def test_the_trail_is_append_only():
    entry = AuditEntry.objects.create(action=Action.LOGIN, source="admin")
    entry.detail = {"edited": True}
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.update(action=Action.LOGOUT)
    assert AuditEntry.objects.get().detail == {}


def test_secret_shaped_detail_keys_are_redacted_whatever_a_caller_passes():
    from audit import trail

    entry = trail.record(Action.CONFIG_PUSH, detail={"name": "x", "password": SENTINEL, "nested": [{"token": SENTINEL}]})
    assert entry.detail == {"name": "x", "password": "[redacted]", "nested": [{"token": "[redacted]"}]}


def test_api_tokens_issued_and_revoked_are_recorded_without_the_token(admin_user_api):
    from relayhub.web import operator_tokens

    token = operator_tokens.issue(admin_user_api)
    operator_tokens.revoke_all(admin_user_api)

    issued, = entries(Action.TOKEN_ISSUE)
    revoked, = entries(Action.TOKEN_REVOKE)
    assert issued.object_id == revoked.object_id == str(admin_user_api.pk)
    trail = the_whole_trail()
    assert token not in trail and token[:8] not in trail


@pytest.mark.parametrize("meta", [{"REMOTE_ADDR": "unknown"}, {"REMOTE_ADDR": ""}, {}])
def test_an_address_that_is_none_is_recorded_as_none_not_an_error(meta):
    from audit import trail

    assert trail.record(Action.LOGIN, meta=meta).address is None


def test_a_forwarded_address_is_recorded_only_when_it_is_one(settings, admin_user_api):
    from audit import trail

    settings.RELAYHUB = {**settings.RELAYHUB, "TRUSTED_PROXY_COUNT": 1}
    forged = trail.record(Action.LOGIN, meta={"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "'; drop table"})
    real = trail.record(Action.LOGIN, meta={"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"})
    assert (forged.address, real.address) == (None, "203.0.113.9")
