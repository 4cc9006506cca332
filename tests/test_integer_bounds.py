"""Every number an operator sends has bounds (integers, ports in ASCII digits, moments); none gives a 500."""

import datetime

import pytest
from django.test import Client

from commands.models import Command, CommandBatch
from configpush.models import ConfigPush

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("field, value", [
    ("max_concurrency", 10**30), ("max_errors", 2**63), ("max_concurrency", 0), ("max_errors", -1),
    ("max_concurrency", 100_001), ("target_port", 0), ("target_port", 65536)])
def test_batch_integers_out_of_range_are_400(admin_api, field, value):
    body = {"machine_ids": ["m-1", "m-2"], "command": "uptime", field: value}
    if field == "target_port":
        body |= {"target_type": "ssh", "target_host": "db", "target_username": "ops"}
    response = admin_api.post("/api/v1/batches/", body, format="json")
    assert response.status_code == 400 and field in response.json()["fields"]
    assert not CommandBatch.objects.exists() and not Command.objects.exists()


def test_batch_bounds_admit_their_largest_values(admin_api):
    response = admin_api.post("/api/v1/batches/", {"machine_ids": ["m-1"], "command": "uptime",
                                                   "max_concurrency": 100_000, "max_errors": 100_000,
                                                   "queue_if_offline": True}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("port", [0, 65536, 10**30])
def test_command_target_port_out_of_range_is_400(admin_api, port):
    response = admin_api.post("/api/v1/commands/", {
        "machine_id": "m-1", "command": "uptime", "target_type": "ssh", "target_host": "db",
        "target_username": "ops", "target_port": port}, format="json")
    assert response.status_code == 400 and "target_port" in response.json()["fields"]
    assert not Command.objects.exists()


@pytest.mark.parametrize("offset", [str(2**63), str(10**30)])
def test_output_offsets_beyond_the_column_are_400(admin_api, make_command, offset):
    command = make_command()
    response = admin_api.get(f"/api/v1/commands/{command.pk}/output/?stdout_offset={offset}")
    assert response.status_code == 400


@pytest.mark.parametrize("target", ["db:\u00b2", "db:\u0662\u0662", "db:0", "db:65536", "db:", "db:123456"])
def test_ssh_target_ports_are_ascii_digits_in_range(admin_api, relay, target):
    response = admin_api.post("/api/v1/config-pushes/", {"relay": str(relay.pk), "push_type": "ssh_targets",
                                                         "payload": {"targets": [target]}}, format="json")
    assert response.status_code == 400 and "port" in response.json()["error"]
    assert not ConfigPush.objects.exists()


@pytest.mark.parametrize("entry", ["systemctl status *; touch /tmp/p", "echo $(id)", "echo `id`", "a && b",
                                   "a | b", "a > f", "ls\nid", "echo 'unbalanced"])
def test_allowed_commands_entries_holding_shell_syntax_are_refused(admin_api, relay, entry):
    response = admin_api.post("/api/v1/config-pushes/", {"relay": str(relay.pk), "push_type": "allowed_commands",
                                                         "payload": {"commands": ["uptime", entry]}}, format="json")
    assert response.status_code == 400 and "commands[1]" in response.json()["error"]
    assert not ConfigPush.objects.exists()


def test_the_run_command_form_bounds_a_batch(admin_client_, issue_relay):
    issue_relay("m-1", "r1"), issue_relay("m-2", "r2")
    response = admin_client_.post("/admin/commands/command/run/", {
        "machines": ["m-1", "m-2"], "target_type": "local", "command": "uptime", "timeout_s": "30",
        "priority": "5", "max_concurrency": str(10**30), "max_errors": str(2**63)})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"max_concurrency", "max_errors"}
    assert not CommandBatch.objects.exists()


def test_an_operator_client_sees_json_for_huge_integers(admin_user_api, relay):
    client = Client()
    client.force_login(admin_user_api)
    response = client.post("/api/v1/batches/", {"machine_ids": ["m-1"], "command": "x", "max_errors": 10**30},
                           content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("moment", ["3296-06-03T07:56:59+17:05", "0001-01-01T00:00:00+17:05",
                                    "9999-12-31T23:59:59-17:00", "2026-01-01T00:00:00+23:59"])
def test_filter_moments_with_any_offset_are_answered_not_500(admin_api, make_command, moment):
    make_command()
    for name in ("created_after", "created_before"):
        response = admin_api.get("/api/v1/commands/", {name: moment})
        assert response.status_code in (200, 400), (name, response.status_code)
        assert response["Content-Type"].startswith("application/json")


def test_filter_moments_compare_in_utc(admin_api, make_command):
    command = make_command()
    shifted = command.created_at.astimezone(datetime.timezone(datetime.timedelta(hours=17, minutes=5)))
    listed = admin_api.get("/api/v1/commands/", {"created_after": shifted.isoformat()}).json()["results"]
    assert [item["id"] for item in listed] == [command.pk]
    assert admin_api.get("/api/v1/commands/", {"created_before": shifted.isoformat()}).json()["results"] == []
