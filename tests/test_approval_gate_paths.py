"""Every way a command or batch is made passes the approval gate: API, rerun, batches, rerun-failed, the admin's run
form and rerun, exec()/exec_async(), relay_exec and the RPC; a batch dispatches only once approved."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from assignments.models import RelayAssignment
from commands import approvals, batches
from commands.approval_model import Approval
from commands.execution import exec, exec_async  # noqa: A004
from commands.models import Command, CommandBatch
from tests.conftest import client_for, mark_online

RUN = "/admin/commands/command/run/"


def require_approval(relay: RelayAssignment) -> None:
    RelayAssignment.objects.filter(pk=relay.pk).update(requires_approval=True)


@pytest.fixture
def fleet(db, issue_relay):
    """Machines a, b, c with a relay each, online; b's relay requires approval."""
    issued = {machine: issue_relay(machine, f"relay-{machine}") for machine in "abc"}
    mark_online(*(i.relay for i in issued.values()))
    require_approval(issued["b"].relay)
    return issued


@pytest.fixture
def approver(make_operator, fleet):
    return make_operator("approver", approve=[i.relay for i in fleet.values()])


def held(subject) -> Approval:
    approval = approvals.of(subject)
    assert approval is not None and approval.state == "pending"
    return approval


def test_api_command_and_its_rerun_are_held(admin_api, admin_user_api, fleet, approver):
    command = admin_api.post("/api/v1/commands/", {"machine_id": "b", "command": "reboot"}, format="json").json()
    assert command["status"] == "awaiting_approval"
    approvals.approve(Approval.objects.get(command=command["id"]), approver)

    rerun = admin_api.post(f"/api/v1/commands/{command['id']}/rerun/", {}, format="json")

    assert rerun.status_code == 201 and rerun.json()["status"] == "awaiting_approval"
    assert held(Command.objects.get(pk=rerun.json()["id"])).requested_by == admin_user_api
    # Elsewhere nothing waits.
    plain = admin_api.post("/api/v1/commands/", {"machine_id": "a", "command": "reboot"}, format="json").json()
    assert plain["status"] == "pending" and plain["approval"] is None


def test_a_batch_waits_then_dispatches_once_approved(admin_api, fleet, approver):
    response = admin_api.post("/api/v1/batches/", {"machine_ids": ["a", "b", "c"], "command": "apt upgrade",
                                                   "max_concurrency": 2}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "awaiting_approval" and body["approval"]["reasons"] == ["relay 'relay-b' requires approval"]
    assert [t["status"] for t in body["targets"]] == ["awaiting_approval"] * 3
    assert not Command.objects.exists()
    for machine in "abc":
        assert client_for(fleet[machine]).post("/relay/commands/next", {"max": 5}, format="json").json()[
            "commands"] == []
    batch = CommandBatch.objects.get(pk=body["id"])
    batches.advance(batch.pk)  # a result of another batch, a sweep: nothing goes out meanwhile
    assert not Command.objects.exists()

    approvals.approve(held(batch), approver, "go")

    assert sorted(Command.objects.filter(status="pending").values_list("machine_id", flat=True)) == ["a", "b"]
    after = admin_api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert after["status"] == "running" and after["approval"]["state"] == "approved"
    claimed = client_for(fleet["a"]).post("/relay/commands/next", {"max": 5}, format="json").json()["commands"]
    assert [c["command"] for c in claimed] == ["apt upgrade"]


def test_a_rejected_batch_records_every_target_cancelled(admin_api, fleet, approver):
    batch_id = admin_api.post("/api/v1/batches/", {"machine_ids": ["a", "b"], "command": "rm -rf /srv/cache"},
                              format="json").json()["id"]

    approvals.reject(held(CommandBatch.objects.get(pk=batch_id)), approver, "wrong directory")

    body = admin_api.get(f"/api/v1/batches/{batch_id}/").json()
    assert body["status"] == "rejected"
    assert [(t["status"], t["error"]) for t in body["targets"]] == [
        ("cancelled", "rejected by approver: wrong directory")] * 2
    assert not Command.objects.filter(status="pending").exists()


def test_cancelling_a_waiting_batch_withdraws_its_approval(admin_api, fleet):
    batch = CommandBatch.objects.get(pk=admin_api.post("/api/v1/batches/", {"machine_ids": ["b"], "command": "x"},
                                                       format="json").json()["id"])
    approval = held(batch)
    batches.cancel(batch.pk)
    approval.refresh_from_db()
    assert approval.state == "withdrawn"
    batches.advance(batch.pk)
    assert not Command.objects.exists()


def test_rerun_failed_targets_is_held(admin_api, fleet, approver):
    RelayAssignment.objects.filter(machine_id="b").update(requires_approval=False)
    batch = CommandBatch.objects.get(pk=admin_api.post("/api/v1/batches/", {"machine_ids": ["a", "b"],
                                                                            "command": "deploy"},
                                                       format="json").json()["id"])
    for command in batch.commands.all():
        relay = fleet[command.machine_id].relay
        assert command.claim(relay)
        command.finish(relay, command.attempt, status="failed", exit_code=1)
    require_approval(fleet["b"].relay)

    rerun = admin_api.post(f"/api/v1/batches/{batch.pk}/rerun-failed/")

    assert rerun.status_code == 201 and rerun.json()["status"] == "awaiting_approval"
    assert not CommandBatch.objects.get(pk=rerun.json()["id"]).commands.exists()


def test_batches_create_takes_a_need_where_no_relay_asks(fleet, admin_user_api):
    need = approvals.Need(reasons=["template 'Rotate logs' requires approval"])
    batch = batches.create(machine_ids=["a", "c"], command="logrotate -f", created_by=admin_user_api, approval=need)
    assert held(batch).reasons == ["template 'Rotate logs' requires approval"]
    assert not batch.commands.exists()


def test_the_admin_run_form_and_rerun_are_held(admin_client_, fleet):
    form = {"machines": ["b"], "command": "systemctl stop db", "target_type": "local", "timeout_s": "30",
            "priority": "5"}
    assert admin_client_.post(RUN, form).status_code == 302
    command = Command.objects.get()
    assert command.status == "awaiting_approval" and held(command)

    admin_client_.post(f"/admin/commands/command/{command.pk}/rerun/")
    rerun = Command.objects.exclude(pk=command.pk).get()
    assert rerun.status == "awaiting_approval" and held(rerun)

    assert admin_client_.post(RUN, {**form, "machines": ["a", "b"]}).status_code == 302
    batch = CommandBatch.objects.get()
    assert held(batch) and not batch.commands.exists()


def test_the_admin_run_form_over_ssh_targets_is_held(admin_client_, fleet):
    from fleet.models import SSHTarget

    target = SSHTarget.objects.create(name="db-01", host="10.0.0.5", username="ops")
    target.relays.add(fleet["b"].relay)
    response = admin_client_.post(RUN, {"mode": "targets", "targets": [str(target.pk)], "command": "uptime",
                                        "target_type": "ssh", "timeout_s": "30", "priority": "5"})
    assert response.status_code == 302
    assert held(CommandBatch.objects.get()).reasons == ["relay 'relay-b' requires approval"]


def test_exec_async_relay_exec_and_rpc_are_held(fleet, admin_api):
    command_id = exec_async("b", "uptime")
    assert Command.objects.get(pk=command_id).status == "awaiting_approval"

    out, err = StringIO(), StringIO()
    call_command("relay_exec", "b", "--no-follow", "--", "uptime", stdout=out, stderr=err)
    assert Command.objects.get(pk=int(out.getvalue())).status == "awaiting_approval"

    rpc = admin_api.post("/api/v1/rpc/exec", {"machineId": "b", "command": "uptime", "targetType": "local"},
                         format="json")
    assert rpc.json()["status"] == "awaiting_approval"
    assert Command.objects.get(pk=int(rpc.json()["commandId"])).status == "awaiting_approval"


@pytest.mark.django_db(transaction=True)
def test_relay_exec_says_the_command_awaits_approval(fleet):
    err = StringIO()

    def reject_when_held() -> None:
        from django.db import connection

        try:
            for _ in range(200):
                approval = Approval.objects.filter(state="pending").first()
                if approval is not None:
                    approvals.reject(approval, approver_user, "not now")
                    return
                threading.Event().wait(0.05)
        finally:
            connection.close()

    from django.contrib.auth.models import User

    approver_user = User.objects.create_superuser("approver", "a@example.com", "pw-approver-123456")
    rejecter = threading.Thread(target=reject_when_held)
    rejecter.start()
    with pytest.raises(SystemExit) as exit_:
        call_command("relay_exec", "b", "--", "uptime", stdout=StringIO(), stderr=err)
    rejecter.join(10)
    assert exit_.value.code == 130  # cancelled
    assert "it awaits approval (relay 'relay-b' requires approval)" in err.getvalue()
    assert "cancelled: rejected by approver: not now" in err.getvalue()


def test_a_probe_is_not_held(fleet, admin_user_api):
    from fleet import probes
    from fleet.models import SSHTarget

    target = SSHTarget.objects.create(name="db-01", host="10.0.0.5", username="ops")
    target.relays.add(fleet["b"].relay)
    assert probes.start(target, admin_user_api).status == "pending"


@pytest.mark.django_db(transaction=True)
def test_exec_waits_for_approval_then_runs(fleet, approver):
    answered = threading.Event()

    def approve_then_answer() -> None:
        from django.db import connection

        try:
            for _ in range(200):
                approval = Approval.objects.filter(state="pending").first()
                if approval is not None:
                    break
                threading.Event().wait(0.05)
            approvals.approve(approval, approver, "ok")
            relay = client_for(fleet["b"])
            claimed = relay.post("/relay/commands/next", {"max": 1, "waitMs": 2000}, format="json").json()["commands"]
            relay.post("/relay/commands/result", {"commandId": claimed[0]["_id"], "attempt": claimed[0]["attempt"],
                                                  "success": True, "output": "up\n", "exitCode": 0}, format="json")
            answered.set()
        finally:
            connection.close()

    helper = threading.Thread(target=approve_then_answer)
    helper.start()
    result = exec("b", "uptime", claim_timeout_ms=3_000, timeout_ms=5_000)
    helper.join(10)

    assert answered.is_set()
    assert result.success and result.output == "up\n" and result.approval == "approved"


@pytest.mark.django_db(transaction=True)
def test_exec_gives_up_on_approval_and_never_retries_a_rejection(fleet, approver):
    waited = exec("b", "uptime", approval_timeout_ms=200, retries=3, retry_delay_ms=10)
    assert not waited.success and waited.error == "not approved within 200 ms" and waited.approval == "withdrawn"
    assert Command.objects.get(pk=waited.command_id).status == "cancelled"

    def reject_soon() -> None:
        from django.db import connection

        try:
            for _ in range(200):
                approval = Approval.objects.filter(state="pending").first()
                if approval is not None:
                    approvals.reject(approval, approver, "no")
                    return
                threading.Event().wait(0.05)
        finally:
            connection.close()

    rejecter = threading.Thread(target=reject_soon)
    rejecter.start()
    rejected = exec("b", "uptime", retries=3, retry_delay_ms=10)
    rejecter.join(10)
    assert (rejected.status, rejected.error, rejected.approval, rejected.attempts) == (
        "cancelled", "rejected by approver: no", "rejected", 1)
    assert Command.objects.count() == 2


def test_exec_does_not_outlast_the_approval_even_without_a_sweep(fleet):
    from datetime import timedelta

    from django.utils import timezone

    command_id = exec_async("b", "uptime")
    Approval.objects.filter(command=command_id).update(requested_at=timezone.now() - timedelta(days=1),
                                                       expires_at=timezone.now())
    from commands.execution import _wait

    result = _wait(command_id, 1_000, 1)
    assert (result.status, result.error, result.approval) == ("cancelled", "approval expired after 24 h", "expired")


def test_plain_orm_creation_is_held_too(fleet, admin_user_api):
    command = Command.objects.create(machine_id="b", command="uptime", created_by=admin_user_api)
    assert command.status == "awaiting_approval" and held(command).requested_by == admin_user_api
    with pytest.raises(ValueError):
        Command(machine_id="a", command="x", status="completed").save(approval=approvals.Need())


def test_a_decided_approval_cannot_be_decided_again(fleet, approver, make_operator):
    """The threaded races are in test_approval_races."""
    command = Command.objects.create(machine_id="b", command="uptime")
    approval = held(command)
    approvals.approve(approval, approver)
    with pytest.raises(approvals.Conflict):
        approvals.approve(approval, make_operator("second", approve=[fleet["b"].relay]))
    with pytest.raises(approvals.Conflict):
        approvals.reject(approval, approver, "late")
    assert Command.objects.get(pk=command.pk).status == "pending"


def test_signed_in_admin_sees_the_approval_link(fleet, approver):
    client = Client()
    client.force_login(approver)
    command = Command.objects.create(machine_id="b", command="uptime")
    page = client.get(f"/admin/commands/command/{command.pk}/change/").content.decode()
    assert "Awaiting approval: requested by – at" in page and "Review and decide" in page
