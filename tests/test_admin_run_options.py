"""The run form's script upload, working directory, environment and run-as; the command page shows them."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from assignments.models import RelayStatus
from commands.models import Command, CommandBatch
from tests.conftest import mark_online

pytestmark = pytest.mark.django_db

RUN = "/admin/commands/command/run/"
SCRIPT = "#!/bin/bash\nset -eu\necho \"<b>deploying</b> $RELEASE\"\n"


def able(*relays, capabilities=("local_cmd", "run_options")) -> None:
    RelayStatus.objects.filter(relay__in=relays).update(capabilities=list(capabilities))
    mark_online(*relays)


def form(**fields) -> dict:
    return {"machines": ["machine-1"], "command": "", "target_type": "local", "timeout_s": "30", "priority": "5",
            "interpreter": "sh", **fields}


def test_an_uploaded_script_runs_with_its_environment_and_the_page_shows_it(admin_client_, relay):
    able(relay)
    upload = SimpleUploadedFile("deploy v2.sh", SCRIPT.encode(), content_type="text/x-sh")
    response = admin_client_.post(RUN, form(script_file=upload, interpreter="bash", working_directory="/srv/app",
                                            environment="RELEASE=2026.12; rm -rf /\nEMPTY=\n\n", run_as="deploy"))

    command = Command.objects.get()
    assert response.status_code == 302, response.context["form"].errors
    assert command.script == SCRIPT and command.interpreter == "bash"
    assert command.command == "bash deploy_v2.sh"
    assert command.environment == {"RELEASE": "2026.12; rm -rf /", "EMPTY": ""}
    assert (command.working_directory, command.run_as) == ("/srv/app", "deploy")

    page = admin_client_.get(response["Location"]).content.decode()
    assert "How it runs" in page
    assert "&lt;b&gt;deploying&lt;/b&gt;" in page, "the script is shown as text, escaped"
    assert "RELEASE=2026.12; rm -rf /" in page and "/srv/app" in page


def test_the_script_text_box_works_without_an_upload_and_a_batch_carries_it(admin_client_, issue_relay):
    relays = [issue_relay(f"m-{n}", f"r-{n}").relay for n in range(2)]
    able(*relays)
    response = admin_client_.post(RUN, form(machines=["m-0", "m-1"], script="print('hi')", interpreter="python3"))
    assert response.status_code == 302, response.context["form"].errors
    batch = CommandBatch.objects.get()
    assert (batch.script, batch.interpreter, batch.command) == ("print('hi')", "python3", "python3 script")
    assert {c.script for c in batch.commands.all()} == {"print('hi')"}


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"command": "uptime", "script": "echo"}, "command", "not both"),
    ({}, "command", "give a command or a script"),
    ({"command": "x", "environment": "JUSTANAME"}, "environment", "Line 1: write NAME=value"),
    ({"command": "x", "environment": "1X=2"}, "environment", "not a variable name"),
    ({"command": "x", "working_directory": "srv"}, "working_directory", "absolute path"),
    ({"command": "x", "run_as": "root; id"}, "run_as", "user name"),
])
def test_bad_options_are_shown_on_their_field(admin_client_, relay, fields, field, message):
    able(relay)
    response = admin_client_.post(RUN, form(**fields))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors.get(field, [])), response.context["form"].errors
    assert not Command.objects.exists()


def test_an_upload_that_is_not_text_is_refused(admin_client_, relay):
    able(relay)
    upload = SimpleUploadedFile("tool.bin", b"\xff\xfe\x00binary", content_type="application/octet-stream")
    response = admin_client_.post(RUN, form(script_file=upload))
    assert "not UTF-8 text" in " ".join(response.context["form"].errors["script_file"])
    assert not Command.objects.exists()


def test_a_relay_with_an_old_agent_is_named_in_the_form(admin_client_, relay):
    able(relay, capabilities=("local_cmd",))
    response = admin_client_.post(RUN, form(command="id", run_as="deploy"))
    assert response.status_code == 200
    assert "relay-1" in " ".join(response.context["form"].non_field_errors())
    assert not Command.objects.exists()


def test_duplicate_fills_the_form_with_the_options(admin_client_, relay):
    able(relay)
    source = Command.objects.create(machine_id="machine-1", command="bash x.sh", script="echo hi\n",
                                    interpreter="bash", environment={"A": "1", "B": "x=y"}, run_as="deploy",
                                    working_directory="/tmp")
    form_ = admin_client_.get(f"{RUN}?from={source.pk}").context["form"]
    assert form_.initial["script"] == "echo hi\n" and form_.initial["command"] == ""
    assert form_.initial["environment"] == "A=1\nB=x=y"
    assert (form_.initial["run_as"], form_.initial["working_directory"], form_.initial["interpreter"]) == (
        "deploy", "/tmp", "bash")


def test_rerun_to_a_downgraded_agent_says_why_and_queues_nothing(admin_client_, relay):
    able(relay, capabilities=("local_cmd",))
    source = Command.objects.create(machine_id="machine-1", command="id", run_as="deploy")
    response = admin_client_.post(f"/admin/commands/command/{source.pk}/rerun/", follow=True)
    assert Command.objects.count() == 1
    assert "run_options" in response.content.decode()
