"""Job templates: typed parameters as environment variables, launches as batches, the launch-only role."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from assignments.models import RelayAssignment, RelayStatus
from commands.models import Command, CommandBatch
from credentials.models import SharedCredential
from runbooks import params
from runbooks.models import JobTemplate, Launch
from tests.conftest import api_client_for, client_for, mark_online

pytestmark = pytest.mark.django_db
SENTINEL = "tmpl-secret-sentinel-42"
PARAMETERS = [
    {"name": "service", "type": "string", "pattern": "[a-z][a-z0-9-]*", "required": True},
    {"name": "count", "type": "integer", "min": 1, "max": 5, "default": 2},
    {"name": "mode", "type": "choice", "choices": ["fast", "safe"], "default": "safe", "env": "MODE"},
    {"name": "dry_run", "type": "boolean", "default": False},
    {"name": "note", "type": "string"},
    {"name": "token", "type": "secret", "credential": "deploy-token"},
]
INJECTIONS = ["; rm -rf /", "$(touch /tmp/pwned)", "`id`", "line1\nline2", "' \" \\"]


@pytest.fixture
def relays(issue_relay):
    made = [issue_relay(f"web-{n}", f"web-{n}") for n in range(2)] + [issue_relay("db-0", "db-0")]
    for issued in made:
        issued.relay.labels = {"role": issued.relay.name.split("-")[0], "env": "prod"}
        issued.relay.save()
    RelayStatus.objects.update(capabilities=["local_cmd", "run_options"])
    mark_online(*(issued.relay for issued in made))
    return {issued.relay.name: issued for issued in made}


@pytest.fixture
def credential():
    credential = SharedCredential(name="deploy-token", credential_type="password")
    credential.set_value(SENTINEL)
    credential.save()
    return credential


@pytest.fixture
def template(relays, credential):
    return JobTemplate.objects.create(name="Restart service", command='systemctl restart "$RELAYHUB_PARAM_SERVICE"',
                                      parameters=PARAMETERS, selector="role=web", timeout_ms=20_000,
                                      environment={"FIXED": "1"})


def launch(client, template, **body):
    return client.post(f"/api/v1/templates/{template.pk}/launch/", body, format="json")


@pytest.mark.parametrize("value", INJECTIONS)
def test_values_become_environment_variables_verbatim(value):
    rendered = params.render(PARAMETERS, {"service": "nginx", "note": value})
    assert rendered.environment["RELAYHUB_PARAM_NOTE"] == value
    assert rendered.environment["RELAYHUB_PARAM_COUNT"] == "2"
    assert rendered.environment["RELAYHUB_PARAM_MODE"] == rendered.environment["MODE"] == "safe"
    assert rendered.environment["RELAYHUB_PARAM_DRY_RUN"] == "false"
    assert rendered.secret_environment == {"RELAYHUB_PARAM_TOKEN": "deploy-token"}
    assert rendered.shown["token"] == "********"


@pytest.mark.parametrize(("values", "problem"), [
    ({}, "service: is required"),
    ({"service": "nginx; rm -rf /"}, "service: must match"),
    ({"service": "x", "count": "7"}, "count: must be at most 5"),
    ({"service": "x", "count": "2; id"}, "count: must be a whole number"),
    ({"service": "x", "count": True}, "count: must be a whole number"),
    ({"service": "x", "mode": "$(id)"}, "mode: must be one of fast, safe"),
    ({"service": "x", "dry_run": "yes"}, "dry_run: must be true or false"),
    ({"service": "x", "token": "mine"}, "token: a secret is taken from its credential"),
    ({"service": "x", "bogus": "1"}, "bogus: no such parameter"),
    ({"service": "x", "note": "a\u0000b"}, "note: must be text"),
])
def test_a_value_failing_its_type_is_a_400_naming_the_parameter(admin_api, template, values, problem):
    response = launch(admin_api, template, parameters=values)
    assert response.status_code == 400, response.json()
    assert problem in str(response.json()), response.json()
    assert not CommandBatch.objects.exists()


def test_a_launch_is_a_batch_with_the_parameters_as_environment(admin_api, admin_user_api, template, relays):
    response = launch(admin_api, template, parameters={"service": "nginx", "note": "$(touch /tmp/x)", "count": 3})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["template"] == "Restart service" and body["parameters"]["token"] == "********"
    assert SENTINEL not in response.content.decode()
    batch = CommandBatch.objects.get(pk=body["batch"]["id"])
    assert sorted(batch.machine_ids) == ["web-0", "web-1"]
    copies = list(batch.commands.all())
    assert len(copies) == 2
    assert copies[0].environment["RELAYHUB_PARAM_NOTE"] == "$(touch /tmp/x)"
    assert copies[0].environment["FIXED"] == "1" and copies[0].environment["RELAYHUB_PARAM_COUNT"] == "3"
    assert copies[0].command == 'systemctl restart "$RELAYHUB_PARAM_SERVICE"'
    assert SENTINEL not in str(Command.objects.values().first())

    wire = client_for(relays["web-0"]).post("/relay/commands/claim", {"commandId": str(
        batch.commands.get(machine_id="web-0").pk)}, format="json").json()["command"]
    assert wire["environment"]["RELAYHUB_PARAM_TOKEN"] == SENTINEL
    assert Launch.objects.get().launched_by == admin_user_api == batch.created_by


def test_a_launch_may_narrow_the_selector_but_never_widen_it(admin_api, template):
    narrowed = launch(admin_api, template, parameters={"service": "x"}, selector="role=web,env=prod")
    assert narrowed.status_code == 201
    widened = launch(admin_api, template, parameters={"service": "x"}, selector="role=db")
    assert widened.status_code == 400 and "matches nothing" in str(widened.json())
    assert CommandBatch.objects.count() == 1
    bad = launch(admin_api, template, parameters={"service": "x"}, selector="role in (")
    assert bad.status_code == 400 and "selector" in bad.json()["fields"]


def test_the_launch_only_role_launches_but_cannot_run_free_form_commands(make_operator, template, relays):
    other = JobTemplate.objects.create(name="Other", command="true", selector="role=db")
    user = make_operator("launcher", view=[relays["web-0"].relay])
    assign_perm("runbooks.launch_template", user, template)
    client = api_client_for(user)

    assert [t["name"] for t in client.get("/api/v1/templates/").json()["results"]] == ["Restart service"]
    assert launch(client, template, parameters={"service": "nginx"}).status_code == 201
    free = client.post("/api/v1/commands/", {"machine_id": "web-0", "command": "id"}, format="json")
    assert free.status_code == 403
    batch = client.post("/api/v1/batches/", {"machine_ids": ["web-0"], "command": "id"}, format="json")
    assert batch.status_code == 403
    assert launch(client, other).status_code == 404
    edit = client.patch(f"/api/v1/templates/{template.pk}/", {"command": "rm -rf /"}, format="json")
    assert edit.status_code == 403
    assert JobTemplate.objects.get(pk=template.pk).command.startswith("systemctl")


def test_without_launch_permission_a_visible_template_is_403(make_operator, template):
    user = make_operator("approver")
    assign_perm("runbooks.approve_template", user, template)
    response = launch(api_client_for(user), template, parameters={"service": "x"})
    assert response.status_code == 403 and "may not launch" in response.json()["error"]


def test_templates_are_validated_when_saved(admin_api):
    cases = [
        ({"command": "x", "script": "y"}, "command"),
        ({"command": "x", "selector": "role in ("}, "selector"),
        ({"command": "x", "selector": ""}, "selector"),
        ({"command": "x", "parameters": [{"name": "A", "type": "string"}]}, "parameters"),
        ({"command": "x", "parameters": [{"name": "a", "type": "float"}]}, "parameters"),
        ({"command": "x", "parameters": [{"name": "a", "type": "integer", "default": "x"}]}, "parameters"),
        ({"command": "x", "max_errors": "150%"}, "max_errors"),
    ]
    for fields, field in cases:
        body = {"name": "t", "selector": "role=web", "parameters": [], **fields}
        response = admin_api.post("/api/v1/templates/", body, format="json")
        assert response.status_code == 400, (fields, response.json())
        assert field in response.json()["fields"], (fields, response.json())
    assert not JobTemplate.objects.exists()


def test_a_secret_parameter_takes_the_credential_permission(make_operator):
    from django.contrib.auth.models import Permission

    user = make_operator("author")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_jobtemplate", "view_jobtemplate"]))
    body = {"name": "t", "command": "x", "selector": "role=web",
            "parameters": [{"name": "token", "type": "secret", "credential": "deploy-token"}]}
    response = api_client_for(user).post("/api/v1/templates/", body, format="json")
    assert response.status_code == 400 and "shared credentials" in str(response.json())
    body["parameters"] = []
    assert api_client_for(user).post("/api/v1/templates/", body, format="json").status_code == 201


def test_a_script_template_runs_its_script(admin_api, relays):
    template = JobTemplate.objects.create(name="Disk report", script="df -h\n", interpreter="bash",
                                          selector="role=db")
    response = launch(admin_api, template)
    assert response.status_code == 201
    copy = CommandBatch.objects.get().commands.get()
    assert (copy.command, copy.script, copy.interpreter, copy.machine_id) == ("bash Disk-report", "df -h\n", "bash",
                                                                             "db-0")


def test_a_template_requiring_approval_waits_for_a_template_approver(make_operator, template, relays):
    from commands import approvals

    template.requires_approval = True
    template.save()
    launcher, approver, bystander = (make_operator(name) for name in ("launcher", "approver", "bystander"))
    assign_perm("runbooks.launch_template", launcher, template)
    assign_perm("runbooks.launch_template", bystander, template)
    assign_perm("runbooks.approve_template", approver, template)
    response = launch(api_client_for(launcher), template, parameters={"service": "nginx"})
    assert response.status_code == 201
    batch = CommandBatch.objects.get()
    approval = approvals.of(batch)
    assert approval.state == "pending" and "template 'Restart service' requires approval" in approval.reasons
    assert not batch.commands.exists(), "nothing dispatches before approval"

    mine = api_client_for(launcher).post(f"/api/v1/approvals/{approval.pk}/approve/", {}, format="json")
    assert mine.status_code == 403, "the requester never approves their own"
    other = api_client_for(bystander).post(f"/api/v1/approvals/{approval.pk}/approve/", {}, format="json")
    assert other.status_code in (403, 404), "launching is not approving"
    ok = api_client_for(approver).post(f"/api/v1/approvals/{approval.pk}/approve/", {"reason": "planned"},
                                       format="json")
    assert ok.status_code == 200, ok.json()
    assert batch.commands.count() == 2
