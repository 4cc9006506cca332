"""Running, cancelling, rerunning and duplicating commands from the admin; every step is audited."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

from commands.models import Command, CommandBatch
from tests.conftest import mark_online

pytestmark = pytest.mark.django_db

RUN = "/admin/commands/command/run/"


def form(**fields) -> dict:
    return {"machines": ["machine-1"], "command": "echo hi", "target_type": "local", "timeout_s": "2.5",
            "priority": "7", "queue_if_offline": "on", **fields}


def test_one_machine_queues_a_command_and_opens_its_page(admin_client_, admin_user_api, relay):
    response = admin_client_.post(RUN, form())

    command = Command.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/commands/command/{command.pk}/change/"
    assert (command.machine_id, command.command, command.timeout_ms, command.priority) == ("machine-1", "echo hi",
                                                                                          2500, 7)
    assert command.created_by == admin_user_api
    assert LogEntry.objects.get(object_id=str(command.pk)).action_flag == ADDITION


def test_several_machines_make_a_batch(admin_client_, issue_relay):
    issue_relay("a", "relay-a")
    issue_relay("b", "relay-b")

    response = admin_client_.post(RUN, form(machines=["a", "b"], max_concurrency="1"))

    batch = CommandBatch.objects.get()
    assert response["Location"] == f"/admin/commands/commandbatch/{batch.pk}/change/"
    assert batch.machine_ids == ["a", "b"] and batch.max_concurrency == 1
    assert list(batch.commands.values_list("machine_id", flat=True)) == ["a"]
    assert LogEntry.objects.filter(object_id=str(batch.pk), action_flag=ADDITION).exists()


def test_one_offline_machine_is_refused_unless_queueing_is_asked_for(admin_client_, relay):
    refused = admin_client_.post(RUN, form(queue_if_offline=""))
    assert refused.status_code == 200 and not Command.objects.exists()
    assert "no relay for machine 'machine-1' is online" in refused.context["form"].errors["machines"][0]
    mark_online(relay)
    assert admin_client_.post(RUN, form(queue_if_offline="")).status_code == 302
    assert Command.objects.count() == 1


def test_ssh_targets_are_checked(admin_client_, relay):
    missing_host = admin_client_.post(RUN, form(target_type="ssh")).context["form"]
    stray_host = admin_client_.post(RUN, form(target_host="10.0.0.1")).context["form"]
    ok = admin_client_.post(RUN, form(target_type="ssh", target_host="10.0.0.1", target_port="2222",
                                      target_username="ops"))

    assert missing_host.errors == {"target_host": ["An SSH command needs a host."]}
    assert "target_host" in stray_host.errors
    assert ok.status_code == 302
    assert Command.objects.values_list("target_host", "target_port", "target_username").get() == ("10.0.0.1", 2222,
                                                                                                  "ops")


def test_cancel_action_cancels_and_logs(admin_client_, relay, make_command):
    pending, running, done = make_command(), make_command(), make_command()
    running.claim(relay)
    done.claim(relay)
    done.finish(relay, 1, status="completed", exit_code=0)

    admin_client_.post("/admin/commands/command/",
                       {"action": "cancel_commands", "_selected_action": [pending.pk, running.pk, done.pk]})

    pending.refresh_from_db()
    running.refresh_from_db()
    assert pending.status == "cancelled"
    assert running.cancel_requested and running.status == "claimed"
    messages = dict(LogEntry.objects.filter(action_flag=CHANGE).values_list("object_id", "change_message"))
    assert messages == {str(pending.pk): "Cancelled", str(running.pk): "Requested cancel"}


def test_rerun_copies_the_input_fields(admin_client_, admin_user_api, relay, make_command):
    original = make_command(command="uname -a", timeout_ms=1234, priority=9)

    response = admin_client_.post("/admin/commands/command/",
                                  {"action": "rerun_commands", "_selected_action": [original.pk]})

    new = Command.objects.exclude(pk=original.pk).get()
    assert response["Location"] == f"/admin/commands/command/{new.pk}/change/"
    assert (new.command, new.timeout_ms, new.priority, new.created_by) == ("uname -a", 1234, 9, admin_user_api)
    assert LogEntry.objects.get(object_id=str(new.pk)).change_message == f"Rerun of #{original.pk}"


def test_duplicate_opens_the_run_form_prefilled(admin_client_, relay, make_command):
    original = make_command(command="df -h", timeout_ms=1500, priority=3)

    response = admin_client_.post("/admin/commands/command/",
                                  {"action": "duplicate_command", "_selected_action": [original.pk]})
    assert response["Location"] == f"{RUN}?from={original.pk}"
    prefilled = admin_client_.get(response["Location"]).context["form"]

    assert prefilled.initial["command"] == "df -h" and prefilled.initial["machines"] == ["machine-1"]
    assert float(prefilled.initial["timeout_s"]) == 1.5 and prefilled.initial["priority"] == 3
    assert Command.objects.count() == 1


def test_the_cancel_button_on_the_command_page(admin_client_, relay, make_command):
    command = make_command()
    response = admin_client_.post(f"/admin/commands/command/{command.pk}/cancel/")

    command.refresh_from_db()
    assert response.status_code == 302 and command.status == "cancelled"
    assert admin_client_.get(f"/admin/commands/command/{command.pk}/cancel/").status_code == 405


def test_commands_are_neither_edited_nor_deleted_in_the_admin(admin_client_, relay, make_command):
    command = make_command()
    page = admin_client_.get(f"/admin/commands/command/{command.pk}/change/").content.decode()

    assert 'name="command"' not in page
    assert admin_client_.post(f"/admin/commands/command/{command.pk}/delete/").status_code == 403
    assert admin_client_.get("/admin/commands/command/add/")["Location"] == RUN
