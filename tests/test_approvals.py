"""Four eyes: a command on a relay that requires approval waits until another person approves it (issue 16)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from assignments.models import RelayAssignment
from commands import approvals
from commands.approval_model import Approval
from commands.models import Command
from commands.tasks import expire_approvals
from tests.conftest import api_client_for, client_for, mark_online

pytestmark = pytest.mark.django_db


@pytest.fixture
def db_relay(issue_relay):
    """Machine "db", served by relay "db-1", which requires approval."""
    issued = issue_relay("db", "db-1")
    RelayAssignment.objects.filter(pk=issued.relay.pk).update(requires_approval=True)
    mark_online(issued.relay)
    issued.relay.refresh_from_db()
    return issued


@pytest.fixture
def people(make_operator, db_relay):
    relay = db_relay.relay
    return {"alice": make_operator("alice", run=[relay]),            # a runner: queues
            "bob": make_operator("bob", approve=[relay]),            # an approver
            "carol": make_operator("carol", run=[relay])}            # another runner, no approve


def age(approval_id: int, by: timedelta) -> None:
    """As if the approval had been requested ``by`` earlier."""
    approval = Approval.objects.get(pk=approval_id)
    Approval.objects.filter(pk=approval_id).update(requested_at=approval.requested_at - by,
                                                   expires_at=approval.expires_at - by)


def queue(user, command="systemctl restart postgresql", machine_id="db", **fields):
    response = api_client_for(user).post("/api/v1/commands/", {"machine_id": machine_id, "command": command,
                                                                 **fields}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def decide(user, approval_id, verb, reason=None):
    body = {} if reason is None else {"reason": reason}
    return api_client_for(user).post(f"/api/v1/approvals/{approval_id}/{verb}/", body, format="json")


def next_for(issued) -> list:
    response = client_for(issued).post("/relay/commands/next", {"max": 10, "waitMs": 0}, format="json")
    assert response.status_code == 200
    return response.json()["commands"]


def test_a_command_on_a_relay_requiring_approval_waits_and_no_relay_can_take_it(people, db_relay):
    body = queue(people["alice"])

    assert body["status"] == "awaiting_approval" and body["waiting_for"] == "approval"
    assert body["approval"]["state"] == "pending" and body["approval"]["requested_by"] == "alice"
    assert body["approval"]["reasons"] == ["relay 'db-1' requires approval"]
    expires = timezone.datetime.fromisoformat(body["approval"]["expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - timezone.now() <= timedelta(hours=24)
    relay = client_for(db_relay)
    assert next_for(db_relay) == []
    assert relay.get("/relay/commands").json()["commands"] == []
    claim = relay.post("/relay/commands/claim", {"commandId": str(body["id"])}, format="json")
    assert claim.status_code == 400 and claim.json()["error"] == "command is not pending"
    assert Command.objects.get(pk=body["id"]).status == "awaiting_approval"


def test_the_requester_cannot_approve_their_own_not_even_a_superuser(people, admin_user_api, admin_api):
    own = queue(people["alice"])
    refused = decide(people["alice"], own["approval"]["id"], "approve")
    assert refused.status_code == 403
    assert refused.json() == {"error": "you asked for this; another person must approve or reject it (four eyes)"}
    root_own = queue(admin_user_api)
    assert decide(admin_user_api, root_own["approval"]["id"], "approve").status_code == 403
    assert decide(admin_user_api, root_own["approval"]["id"], "reject", "no").status_code == 403
    assert Command.objects.get(pk=root_own["id"]).status == "awaiting_approval"
    # Another superuser may: superusers are approvers, just not of their own.
    assert decide(people["alice"], root_own["approval"]["id"], "approve").status_code == 403  # alice is no approver
    assert decide(admin_user_api, own["approval"]["id"], "approve").status_code == 200


def test_a_runner_without_approve_gets_403_and_a_stranger_404(people, make_operator, issue_relay):
    approval_id = queue(people["alice"])["approval"]["id"]
    stranger = make_operator("dave", run=[issue_relay("elsewhere", "other").relay])

    refused = decide(people["carol"], approval_id, "approve")
    assert refused.status_code == 403 and "approve_command on every relay of db" in refused.json()["error"]
    assert decide(people["carol"], approval_id, "reject", "no").status_code == 403
    assert decide(stranger, approval_id, "approve").status_code == 404
    assert api_client_for(stranger).get("/api/v1/approvals/").json()["results"] == []
    listed = api_client_for(people["carol"]).get("/api/v1/approvals/").json()["results"]
    assert [(a["id"], a["may_decide"]) for a in listed] == [(approval_id, False)]
    assert Approval.objects.get(pk=approval_id).state == "pending"


def test_an_approved_command_is_queued_and_a_relay_runs_it(people, db_relay):
    body = queue(people["alice"])
    listed = api_client_for(people["bob"]).get("/api/v1/approvals/").json()["results"]
    assert listed[0]["may_decide"] is True and listed[0]["plan"]["command"] == "systemctl restart postgresql"

    approved = decide(people["bob"], body["approval"]["id"], "approve", "change ticket 42")

    assert approved.status_code == 200
    assert (approved.json()["state"], approved.json()["decided_by"], approved.json()["reason"]) == (
        "approved", "bob", "change ticket 42")
    assert [c["_id"] for c in next_for(db_relay)] == [str(body["id"])]
    shown = api_client_for(people["alice"]).get(f"/api/v1/commands/{body['id']}/").json()
    assert shown["status"] == "claimed" and shown["approval"]["decided_by"] == "bob"
    assert shown["approval"]["decided_at"] is not None


def test_deciding_twice_is_a_409(people):
    approval_id = queue(people["alice"])["approval"]["id"]
    assert decide(people["bob"], approval_id, "approve").status_code == 200

    again = decide(people["bob"], approval_id, "approve")
    assert again.status_code == 409 and again.json()["error"].startswith("command ")
    assert "was approved by bob at" in again.json()["error"]
    assert decide(people["bob"], approval_id, "reject", "changed my mind").status_code == 409


def test_a_rejection_needs_a_reason_and_the_command_never_reaches_a_relay(people, db_relay):
    body = queue(people["alice"])
    approval_id = body["approval"]["id"]

    no_reason = decide(people["bob"], approval_id, "reject", "  ")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]
    rejected = decide(people["bob"], approval_id, "reject", "not during business hours")

    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    command = Command.objects.get(pk=body["id"])
    assert command.status == "cancelled" and command.error == "rejected by bob: not during business hours"
    assert next_for(db_relay) == []
    assert decide(people["bob"], approval_id, "approve").status_code == 409


def test_the_expiry_sweep_cancels_and_is_idempotent(people, db_relay):
    body = queue(people["alice"])
    later = queue(people["alice"], "echo later")
    age(body["approval"]["id"], timedelta(hours=24, seconds=1))

    assert expire_approvals() == 1
    assert expire_approvals() == 0

    command = Command.objects.get(pk=body["id"])
    assert command.status == "cancelled" and command.error == "approval expired after 24 h"
    assert Approval.objects.get(pk=body["approval"]["id"]).state == "expired"
    assert Command.objects.get(pk=later["id"]).status == "awaiting_approval"
    late = decide(people["bob"], body["approval"]["id"], "approve")
    assert late.status_code == 409 and "expired" in late.json()["error"]
    assert next_for(db_relay) == []


def test_deciding_past_expiry_before_any_sweep_is_a_409_and_expires_it(people):
    body = queue(people["alice"])
    age(body["approval"]["id"], timedelta(hours=24))

    late = decide(people["bob"], body["approval"]["id"], "approve")

    assert late.status_code == 409 and "expired" in late.json()["error"]
    assert Command.objects.get(pk=body["id"]).error == "approval expired after 24 h"


def test_approval_ttl_comes_from_settings(people, settings):
    settings.RELAYHUB = {**settings.RELAYHUB, "APPROVAL_TTL_S": 600}
    body = queue(people["alice"])
    approval = Approval.objects.get(pk=body["approval"]["id"])
    assert approval.ttl == timedelta(minutes=10)
    age(approval.pk, timedelta(seconds=599))
    assert approvals.expire_due() == 0
    age(approval.pk, timedelta(seconds=2))
    assert approvals.expire_due() == 1
    assert Command.objects.get(pk=body["id"]).error == "approval expired after 10 min"


def test_cancelling_a_waiting_command_withdraws_its_approval(people):
    body = queue(people["alice"])

    cancelled = api_client_for(people["alice"]).post(f"/api/v1/commands/{body['id']}/cancel/")

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"] == "cancelled while awaiting approval"
    assert Approval.objects.get(pk=body["approval"]["id"]).state == "withdrawn"
    assert decide(people["bob"], body["approval"]["id"], "approve").status_code == 409


def test_a_disabled_relay_requiring_approval_holds_nothing(people, db_relay, issue_relay):
    plain = issue_relay("db", "db-2")
    mark_online(plain.relay)
    RelayAssignment.objects.filter(pk=db_relay.relay.pk).update(enabled=False)

    assert queue(people["alice"])["status"] == "pending"


def test_the_approver_permission_on_an_object_also_lets_a_user_decide(make_operator, issue_relay):
    """A generic approver: here a relay stands for the object (the runbooks template in real use)."""
    target = issue_relay("plain", "plain-1").relay
    mark_online(target)
    stand_in = issue_relay("templates", "stand-in").relay
    requester = make_operator("req", run=[target])
    holder = make_operator("eve", configure=[stand_in])          # configure_relay on the stand-in only
    outsider = make_operator("frank", run=[stand_in])
    need = approvals.Need(reasons=["template 'Restart nginx' requires approval"], approver_object=stand_in,
                          approver_permission="assignments.configure_relay")
    command = approvals.queue(Command(machine_id="plain", command="systemctl restart nginx", created_by=requester),
                              approval=need)
    approval = approvals.of(command)
    assert command.status == "awaiting_approval" and approval.reasons == ["template 'Restart nginx' requires approval"]

    assert decide(outsider, approval.pk, "approve").status_code == 404  # sees neither the machine nor the template
    listed = api_client_for(holder).get("/api/v1/approvals/").json()["results"]
    assert [(a["id"], a["may_decide"], a["approver_permission"]) for a in listed] == [
        (approval.pk, True, "assignments.configure_relay")]
    assert decide(holder, approval.pk, "approve").status_code == 200
    command.refresh_from_db()
    assert command.status == "pending"


def test_a_relay_approver_needs_approve_on_every_relay_of_the_machine(people, db_relay, issue_relay, make_operator):
    second = issue_relay("db", "db-2").relay
    approval_id = queue(people["alice"])["approval"]["id"]
    assert decide(people["bob"], approval_id, "approve").status_code == 403  # not on db-2
    both = make_operator("grace", approve=[db_relay.relay, second])
    assert decide(both, approval_id, "approve").status_code == 200


def test_the_plan_masks_secret_variables_and_never_reads_them(people, admin_api):
    from credentials.models import SharedCredential

    sentinel = "s3cret-SENTINEL-value-771"
    credential = SharedCredential(name="db-password", credential_type="password", target_host="db")
    credential.set_value(sentinel)
    credential.save()
    command = Command.objects.create(machine_id="db", command="", script="pg_dump app > /tmp/app.sql\n",
                                     interpreter="bash", working_directory="/srv", run_as="postgres",
                                     environment={"MODE": "full"}, secret_environment={"PGPASSWORD": "db-password"},
                                     created_by=people["alice"])
    assert command.status == "awaiting_approval"

    response = api_client_for(people["bob"]).get(f"/api/v1/approvals/{approvals.of(command).pk}/")

    plan = response.json()["plan"]
    assert plan["script"] == "pg_dump app > /tmp/app.sql\n" and plan["interpreter"] == "bash"
    assert (plan["working_directory"], plan["run_as"], plan["target_count"]) == ("/srv", "postgres", 1)
    assert plan["environment"] == ["MODE=full", "PGPASSWORD=******** (credential db-password)"]
    assert sentinel not in response.content.decode()
    assert sentinel not in admin_api.get("/api/v1/approvals/").content.decode()


def test_only_configurers_change_whether_a_relay_requires_approval(db_relay, make_operator):
    relay = db_relay.relay
    runner = make_operator("runner", run=[relay])
    configurer = make_operator("configurer", configure=[relay])
    url = f"/api/v1/relays/{relay.pk}/"

    refused = api_client_for(runner).patch(url, {"requires_approval": False}, format="json")
    assert refused.status_code == 403 and "configure_relay" in refused.json()["error"]
    assert api_client_for(make_operator("nobody")).patch(url, {"requires_approval": False}, format="json"
                                                          ).status_code == 404
    other = api_client_for(configurer).patch(url, {"enabled": False, "requires_approval": False}, format="json")
    assert other.status_code == 400 and "enabled" in other.json()["fields"]
    assert api_client_for(configurer).put(url, {"requires_approval": False}, format="json").status_code == 405
    relay.refresh_from_db()
    assert relay.requires_approval and relay.enabled

    changed = api_client_for(configurer).patch(url, {"requires_approval": False}, format="json")
    assert changed.status_code == 200 and changed.json()["requires_approval"] is False
    relay.refresh_from_db()
    assert not relay.requires_approval


def test_the_approvals_list_puts_pending_ones_first_and_filters_by_state(people):
    first = queue(people["alice"], "echo first")["approval"]["id"]
    second = queue(people["alice"], "echo second")["approval"]["id"]
    assert decide(people["bob"], second, "reject", "no").status_code == 200
    third = queue(people["alice"], "echo third")["approval"]["id"]
    client = api_client_for(people["bob"])

    assert [a["id"] for a in client.get("/api/v1/approvals/").json()["results"]] == [third, first, second]
    assert [a["id"] for a in client.get("/api/v1/approvals/?state=rejected").json()["results"]] == [second]


def test_an_approved_command_is_queued_from_the_approval_on(people, db_relay):
    """Its queue time to live counts from the approval, not from the request hours earlier."""
    from commands.tasks import expire_commands

    body = queue(people["alice"])
    age(body["approval"]["id"], timedelta(hours=5))
    Command.objects.filter(pk=body["id"]).update(created_at=timezone.now() - timedelta(hours=5))
    assert decide(people["bob"], body["approval"]["id"], "approve").status_code == 200

    expire_commands()

    command = Command.objects.get(pk=body["id"])
    assert command.status == "pending" and timezone.now() - command.created_at < timedelta(minutes=1)
    assert [c["_id"] for c in next_for(db_relay)] == [str(body["id"])]
