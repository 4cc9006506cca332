"""Reading the audit trail: the admin page, the REST list and JSON-lines export, syslog, the dashboard, and who
relay_exec and exec() record. Each read needs ``audit.view_auditentry``."""

from __future__ import annotations

import json
import socket
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client, override_settings
from django.conf import settings

from audit import trail
from audit.models import Action, AuditEntry
from commands.execution import exec_async
from tests.conftest import api_client_for, mark_online

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail_of_three(admin_user_api):
    for action, name in ((Action.LOGIN, "a"), (Action.COMMAND_QUEUE, "b"), (Action.LOGOUT, "c")):
        trail.record(action, actor=admin_user_api, object_type="thing", object_repr=name)


def reader(make_operator):
    user = make_operator("auditor")
    user.user_permissions.add(Permission.objects.get(codename="view_auditentry"))
    return user


def test_without_view_auditentry_every_read_is_refused(make_operator, trail_of_three):
    user = make_operator("nosy")
    client = Client()
    client.force_login(user)
    api = api_client_for(user)
    assert api.get("/api/v1/audit/").status_code == 403
    assert api.get("/api/v1/audit/export/").status_code == 403
    assert client.get("/admin/audit/auditentry/").status_code == 403
    assert client.get("/admin/audit/auditentry/export/").status_code == 403


def test_the_rest_list_filters_and_is_read_only(make_operator, admin_user_api, trail_of_three):
    api = api_client_for(reader(make_operator))
    listed = api.get("/api/v1/audit/", {"action": "auth.login"}).json()
    assert [item["object_repr"] for item in listed["results"]] == ["a"]
    assert listed["results"][0]["actor"] == "root" and listed["results"][0]["source"] == "python"
    newest_first = [item["object_repr"] for item in api.get("/api/v1/audit/", {"actor": "root"}).json()["results"]]
    assert newest_first[:3] == ["c", "b", "a"]
    some = AuditEntry.objects.first().pk
    for client in (api, api_client_for(admin_user_api)):  # even a superuser: there is no route that writes
        assert client.post("/api/v1/audit/", {}, format="json").status_code in (403, 405)
        assert client.delete(f"/api/v1/audit/{some}/").status_code in (403, 405)
    assert AuditEntry.objects.count() >= 3
    assert api.get("/api/v1/audit/", {"since": "not a time"}).status_code == 400


def test_the_export_is_json_lines_oldest_first_with_the_filters(make_operator, trail_of_three):
    api = api_client_for(reader(make_operator))
    response = api.get("/api/v1/audit/export/", {"action": ["auth.login", "auth.logout"]})
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    assert "attachment" in response["Content-Disposition"]
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [(line["action"], line["object"]) for line in lines] == [("auth.login", "a"), ("auth.logout", "c")]


def test_the_admin_page_lists_filters_and_exports(make_operator, trail_of_three):
    client = Client()
    client.force_login(reader(make_operator))
    page = client.get("/admin/audit/auditentry/", {"action__exact": "command.queue"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "Export JSON lines" in body and "action__exact=command.queue" in body
    assert "Add audit entry" not in body and 'name="action"' not in body, "no add, no bulk actions"
    exported = client.get("/admin/audit/auditentry/export/", {"action__exact": "command.queue"})
    lines = b"".join(exported.streaming_content).decode().splitlines()
    assert [json.loads(line)["object"] for line in lines] == ["b"]
    entry = AuditEntry.objects.first()
    assert client.get(f"/admin/audit/auditentry/{entry.pk}/change/").status_code == 200
    assert client.post(f"/admin/audit/auditentry/{entry.pk}/delete/").status_code == 403


def test_each_entry_goes_to_syslog_as_one_json_line_when_configured():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    try:
        with override_settings(RELAYHUB={**settings.RELAYHUB, "AUDIT_SYSLOG": f"udp://127.0.0.1:{port}"}):
            trail.record(Action.LOGIN_FAILED, object_repr="mallory", detail={"username": "mallory"})
        datagram = receiver.recv(65536).decode()
    finally:
        receiver.close()
        trail._syslog()  # the setting is back: the handler goes
    assert datagram.startswith("<")  # the syslog priority: auth facility
    record = json.loads(datagram.split("relayhub-audit: ", 1)[1].rstrip("\x00"))
    assert record["action"] == "auth.login_failed" and record["detail"] == {"username": "mallory"}


def test_the_dashboard_shows_everyones_activity_to_readers_and_only_their_own_to_others(
        make_operator, admin_user_api, trail_of_three):
    own = make_operator("plain")
    trail.record(Action.COMMAND_CANCEL, actor=own, object_type="command", object_repr="mine-42")
    client = Client()
    client.force_login(own)
    body = client.get("/admin/").content.decode()
    assert "Your recent activity" in body and "mine-42" in body and "thing b" not in body
    client.force_login(admin_user_api)
    body = client.get("/admin/").content.decode()
    assert "Recent activity" in body and "mine-42" in body and "thing b" in body
    assert "The whole audit trail" in body


def test_relay_exec_as_an_operator_records_them_as_creator_and_the_os_user(make_operator, issued):
    mark_online(issued.relay)
    alice = make_operator("alice", run=[issued.relay])
    out = StringIO()
    call_command("relay_exec", issued.relay.machine_id, "--as", "alice", "--no-follow", "--", "uptime",
                 stdout=out, stderr=StringIO())
    queued, = AuditEntry.objects.filter(action=Action.COMMAND_QUEUE)
    assert queued.object_id == out.getvalue().strip()
    assert (queued.actor_id, queued.actor_name, queued.source) == (alice.pk, "alice", "cli")


def test_relay_exec_maps_the_os_user_to_an_operator(make_operator, issued):
    mark_online(issued.relay)
    bob = make_operator("bob", run=[issued.relay])
    mapping = {**settings.RELAYHUB, "OS_USER_MAP": {trail.os_user(): "bob"}}
    with override_settings(RELAYHUB=mapping):
        call_command("relay_exec", issued.relay.machine_id, "--no-follow", "--", "id", stdout=StringIO(),
                     stderr=StringIO())
    queued, = AuditEntry.objects.filter(action=Action.COMMAND_QUEUE)
    assert queued.actor_id == bob.pk and queued.actor.username == "bob"


def test_relay_exec_without_an_operator_records_the_os_user(issued):
    mark_online(issued.relay)
    call_command("relay_exec", issued.relay.machine_id, "--no-follow", "--", "id", stdout=StringIO(),
                 stderr=StringIO())
    queued, = AuditEntry.objects.filter(action=Action.COMMAND_QUEUE)
    assert queued.actor is None and queued.actor_name == f"{trail.os_user()} (OS user, relay_exec)"


def test_exec_records_its_created_by_or_else_the_os_user(make_operator, issued):
    carol = make_operator("carol")
    exec_async(issued.relay.machine_id, "true", created_by=carol)
    exec_async(issued.relay.machine_id, "true")
    by_carol, by_nobody = AuditEntry.objects.filter(action=Action.COMMAND_QUEUE).order_by("id")
    assert (by_carol.actor_name, by_carol.source) == ("carol", "python")
    assert by_nobody.actor is None and by_nobody.actor_name == f"{trail.os_user()} (OS user)"
