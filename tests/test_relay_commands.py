"""GET /relay/commands, claim and result (SPEC §3)."""

import pytest

from commands.choices import CommandStatus
from commands import output
from commands.models import Command
from tests.conftest import client_for


def test_pending_lists_this_machine_highest_priority_then_oldest(relay, relay_client, make_command):
    low = make_command(command="low", priority=1)
    high = make_command(command="high", priority=9)
    older_normal = make_command(command="normal-1")
    newer_normal = make_command(command="normal-2")
    make_command(machine_id="other-machine")
    make_command(command="claimed").claim(relay)
    response = relay_client.get("/relay/commands")
    assert response.status_code == 200
    ids = [c["_id"] for c in response.json()["commands"]]
    assert ids == [str(high.pk), str(older_normal.pk), str(newer_normal.pk), str(low.pk)]


def test_pending_shape_leaves_out_empty_optional_fields(relay_client, make_command):
    local = make_command(command="uptime", timeout_ms=5000)
    ssh = make_command(command="df -h", target_type="ssh", target_host="10.0.0.5", target_port=2222,
                       target_username="admin")
    listed = {c["_id"]: c for c in relay_client.get("/relay/commands").json()["commands"]}
    assert listed[str(local.pk)] == {
        "_id": str(local.pk), "command": "uptime", "targetType": "local", "timeoutMs": 5000,
        "createdAt": int(local.created_at.timestamp() * 1000),
    }
    assert listed[str(ssh.pk)]["targetHost"] == "10.0.0.5"
    assert listed[str(ssh.pk)]["targetPort"] == 2222
    assert listed[str(ssh.pk)]["targetUsername"] == "admin"


def test_pending_returns_at_most_ten(relay_client, make_command):
    for _ in range(12):
        make_command()
    assert len(relay_client.get("/relay/commands").json()["commands"]) == 10


def test_claim_returns_the_command_and_moves_it(relay, relay_client, make_command):
    command = make_command(command="df -h", timeout_ms=1000)
    response = relay_client.post("/relay/commands/claim", {"commandId": str(command.pk)}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "command": {"_id": str(command.pk), "command": "df -h", "targetType": "local", "timeoutMs": 1000,
                    "attempt": 1},
    }
    command.refresh_from_db()
    assert (command.status, command.claimed_by_id, command.attempt) == ("claimed", relay.pk, 1)


def test_claim_of_a_command_no_longer_pending_is_400(relay_client, make_command):
    command = make_command()
    relay_client.post("/relay/commands/claim", {"commandId": str(command.pk)}, format="json")
    response = relay_client.post("/relay/commands/claim", {"commandId": str(command.pk)}, format="json")
    assert response.status_code == 400
    assert response.json() == {"success": False, "error": "command is not pending"}


def test_claim_of_another_machines_command_is_404(relay_client, make_command):
    command = make_command(machine_id="elsewhere")
    response = relay_client.post("/relay/commands/claim", {"commandId": str(command.pk)}, format="json")
    assert response.status_code == 404
    assert Command.objects.get(pk=command.pk).status == "pending"


@pytest.mark.parametrize("command_id,status", [(7, 400), (None, 400), (["1"], 400), ("999999", 404), ("abc", 404)])
def test_claim_with_bad_or_unknown_id(relay_client, command_id, status):
    response = relay_client.post("/relay/commands/claim", {"commandId": command_id}, format="json")
    assert response.status_code == status
    assert response.json()["success"] is False


@pytest.fixture
def claimed(relay, relay_client, make_command):
    command = make_command()
    relay_client.post("/relay/commands/claim", {"commandId": str(command.pk)}, format="json")
    return command


def result(command, **fields):
    return {"commandId": str(command.pk), "success": True, "output": "hi\n", "exitCode": 0, "durationMs": 12,
            **fields}


def test_result_completes_the_command(relay_client, claimed):
    response = relay_client.post("/relay/commands/result", result(claimed, stderr="warn"), format="json")
    assert response.status_code == 200 and response.json() == {"success": True}
    claimed.refresh_from_db()
    assert claimed.status == "completed"
    assert (claimed.output, claimed.stderr, claimed.exit_code, claimed.duration_ms) == ("hi\n", "warn", 0, 12)
    assert claimed.completed_at is not None


def test_unsuccessful_result_is_stored_as_failed(relay_client, claimed):
    relay_client.post("/relay/commands/result", result(claimed, success=False, exitCode=2), format="json")
    claimed.refresh_from_db()
    assert (claimed.status, claimed.exit_code) == ("failed", 2)


@pytest.mark.parametrize("status", ["timeout", "cancelled"])
def test_result_may_carry_a_final_status(relay_client, claimed, status):
    relay_client.post("/relay/commands/result", result(claimed, success=False, status=status), format="json")
    claimed.refresh_from_db()
    assert claimed.status == status


def test_identical_resend_returns_the_same_answer(relay_client, claimed):
    first = relay_client.post("/relay/commands/result", result(claimed), format="json")
    again = relay_client.post("/relay/commands/result", result(claimed), format="json")
    assert first.json() == again.json() == {"success": True}
    assert again.status_code == 200


def test_different_result_for_a_finished_command_is_409_and_not_applied(relay_client, claimed):
    relay_client.post("/relay/commands/result", result(claimed), format="json")
    response = relay_client.post("/relay/commands/result", result(claimed, success=False, output="other"),
                                 format="json")
    assert response.status_code == 409
    assert response.json()["success"] is False
    claimed.refresh_from_db()
    assert (claimed.status, claimed.output) == ("completed", "hi\n")


def test_stale_attempt_is_409(relay_client, claimed):
    response = relay_client.post("/relay/commands/result", result(claimed, attempt=2), format="json")
    assert response.status_code == 409
    assert Command.objects.get(pk=claimed.pk).status == "claimed"


def test_result_from_a_relay_that_does_not_hold_the_claim_is_404(issue_relay, claimed):
    same_machine = issue_relay(name="rival")
    response = client_for(same_machine).post("/relay/commands/result", result(claimed), format="json")
    assert response.status_code == 404
    assert Command.objects.get(pk=claimed.pk).status == "claimed"


def test_result_for_an_unclaimed_command_is_404(relay_client, make_command):
    command = make_command()
    response = relay_client.post("/relay/commands/result", result(command), format="json")
    assert response.status_code == 404
    assert Command.objects.get(pk=command.pk).status == "pending"


def test_result_after_the_sweeper_timed_it_out_is_409(relay_client, claimed):
    claimed.expire(CommandStatus.active(), "execution timed out")
    response = relay_client.post("/relay/commands/result", result(claimed), format="json")
    assert response.status_code == 409
    claimed.refresh_from_db()
    assert (claimed.status, claimed.error) == ("timeout", "execution timed out")


def test_output_is_capped_with_a_truncation_flag(settings, relay_client, claimed):
    settings.RELAYHUB = {**settings.RELAYHUB, "OUTPUT_CAP_BYTES": 10}
    relay_client.post("/relay/commands/result", result(claimed, output="é" * 20), format="json")
    claimed.refresh_from_db()
    # A quarter of the cap is the head (one é), the rest the tail (four), and a marker for the 30 bytes between.
    assert claimed.output == "é" + output.skip_marker(30, 10) + "é" * 4
    assert claimed.output_truncated is True
