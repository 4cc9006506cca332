"""The config push form validates each push type and says what it expected."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.test import Client

from configpush.models import ConfigPush

pytestmark = pytest.mark.django_db
ADD = "/admin/configpush/configpush/add/"


def errors_for(client: Client, relay, push_type: str, payload: str) -> list[str]:
    response = client.post(ADD, {"relay": relay.pk, "push_type": push_type, "payload": payload})
    assert response.status_code == 200, response.get("Location")
    return response.context["adminform"].form.errors.get("payload", [])


@pytest.mark.parametrize(("push_type", "payload", "message"), [
    ("ssh_targets", '{"targets": [{"host": "db", "port": 70000}]}', "targets[0]: port must be an integer"),
    ("ssh_targets", '{"targets": [{"host": "db", "hostKey": "nope"}]}', "hostKey must be an OpenSSH public key"),
    ("ssh_targets", '{"targets": "db"}', "targets must be a list"),
    ("allowed_commands", '{"commands": ["uptime", ""]}', "commands must be a list of non-empty strings"),
    ("allowed_commands", '{"commands": ["uptime"], "extra": 1}', "unknown field(s): extra"),
    ("metrics_interval", '{"intervalMs": 10}', "intervalMs must be an integer from 1000 to 86400000"),
    ("metrics_interval", "[1]", "payload must be a JSON object"),
])
def test_an_invalid_payload_is_refused_with_its_reason_and_an_example(admin_client_, relay, push_type, payload,
                                                                      message):
    errors = errors_for(admin_client_, relay, push_type, payload)

    assert any(message in error for error in errors), errors
    assert any(error.startswith("For example: {") for error in errors)
    assert not ConfigPush.objects.exists()


def test_invalid_json_is_refused(admin_client_, relay):
    assert errors_for(admin_client_, relay, "metrics_interval", "{intervalMs: 5}") == ["Enter a valid JSON."]


def test_credential_pushes_come_only_from_shared_credentials(admin_client_, relay):
    errors = admin_client_.post(ADD, {"relay": relay.pk, "push_type": "credential", "payload": "{}"}).context[
        "adminform"].form.errors

    assert "push_type" in errors


def test_a_valid_push_is_queued_normalised_and_logged(admin_client_, admin_user_api, relay):
    response = admin_client_.post(ADD, {"relay": relay.pk, "push_type": "ssh_targets",
                                        "payload": '{"targets": ["db.internal:2222"]}'})

    push = ConfigPush.objects.get()
    assert response.status_code == 302
    assert push.payload == {"targets": [{"host": "db.internal", "port": 2222}]}
    assert push.created_by == admin_user_api and push.status == "pending"
    assert LogEntry.objects.get(object_id=str(push.pk)).action_flag == ADDITION
    assert admin_client_.get(f"/admin/configpush/configpush/{push.pk}/change/").status_code == 200
