"""Secret environment values: referenced by credential name, resolved only for the relay, masked in output."""

from __future__ import annotations

import pytest

from commands.models import Command
from credentials.models import SharedCredential
from tests.test_relay_extensions import chunks

pytestmark = pytest.mark.django_db
SENTINEL = "s3cr3t-sentinel-7f1c"


@pytest.fixture
def credential():
    credential = SharedCredential(name="db-password", credential_type="password")
    credential.set_value(SENTINEL)
    credential.save()
    return credential


@pytest.fixture
def secret_command(credential, make_command):
    return make_command(environment={"MODE": "fast"}, secret_environment={"DB_PASSWORD": "db-password"})


def test_the_relay_gets_the_value_and_the_row_only_the_name(relay_client, secret_command, admin_api):
    claimed = relay_client.post("/relay/commands/claim", {"commandId": str(secret_command.pk)}, format="json")
    assert claimed.json()["command"]["environment"] == {"MODE": "fast", "DB_PASSWORD": SENTINEL}

    row = Command.objects.filter(pk=secret_command.pk).values()[0]
    assert SENTINEL not in str(row)
    shown = admin_api.get(f"/api/v1/commands/{secret_command.pk}/")
    assert shown.status_code == 200 and SENTINEL not in shown.content.decode()
    assert shown.json()["secret_environment"] == {"DB_PASSWORD": "db-password"}


def test_output_is_masked_and_live_chunks_are_not_kept(relay_client, secret_command, admin_api):
    relay_client.post("/relay/commands/claim", {"commandId": str(secret_command.pk)}, format="json")
    relay_client.post("/relay/commands/output", chunks(secret_command, ("stdout", 0, f"pw={SENTINEL}")),
                      format="json")
    live = admin_api.get(f"/api/v1/commands/{secret_command.pk}/output/")
    assert SENTINEL not in live.content.decode()

    body = {"commandId": str(secret_command.pk), "success": False, "exitCode": 1, "output": f"pw={SENTINEL}\n",
            "stderr": f"error: {SENTINEL[:5]}{SENTINEL[5:]} rejected", "error": f"failed with {SENTINEL}"}
    assert relay_client.post("/relay/commands/result", body, format="json").status_code == 200
    assert relay_client.post("/relay/commands/result", body, format="json").status_code == 200, "a resend matches"
    secret_command.refresh_from_db()
    assert secret_command.output == "pw=********\n"
    assert secret_command.stderr == "error: ******** rejected"
    assert SENTINEL not in secret_command.error
    page = admin_api.get(f"/api/v1/commands/{secret_command.pk}/").content.decode()
    assert SENTINEL not in page


def test_a_deleted_credential_reaches_the_relay_as_no_value(relay_client, secret_command, credential):
    credential.delete()
    claimed = relay_client.post("/relay/commands/claim", {"commandId": str(secret_command.pk)}, format="json")
    assert claimed.json()["command"]["environment"] == {"MODE": "fast", "DB_PASSWORD": None}


def test_the_long_poll_hands_out_the_value_too(relay_client, secret_command):
    from tests.test_relay_extensions import next_

    [wire] = next_(relay_client, waitMs=0).json()["commands"]
    assert wire["environment"]["DB_PASSWORD"] == SENTINEL
