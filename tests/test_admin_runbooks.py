"""Job templates in the admin: the launch form built from the parameters, and who sees and launches what."""

from __future__ import annotations

import pytest
from django.test import Client
from guardian.shortcuts import assign_perm

from commands.models import CommandBatch
from runbooks.models import JobTemplate, Launch
from tests.test_runbooks import PARAMETERS, credential, relays, template  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def launch_url(template) -> str:  # noqa: F811
    return f"/admin/runbooks/jobtemplate/{template.pk}/launch/"


def test_the_form_has_a_field_per_parameter_and_shows_what_runs(admin_client_, template):  # noqa: F811
    page = admin_client_.get(launch_url(template))
    form = page.context["form"]
    assert [name for name in form.fields][:6] == [f"param_{item['name']}" for item in PARAMETERS]
    assert form.fields["param_mode"].choices[-2:] == [("fast", "fast"), ("safe", "safe")]
    assert form.fields["param_count"].max_value == 5
    assert form.fields["param_token"].disabled
    html = page.content.decode()
    assert "systemctl restart &quot;$RELAYHUB_PARAM_SERVICE&quot;" in html
    assert "from the shared credential &#x27;deploy-token&#x27;" in html
    assert "2 now" in html  # two relays match role=web


def test_a_valid_launch_makes_a_batch_and_opens_its_page(admin_client_, template):  # noqa: F811
    response = admin_client_.post(launch_url(template), {"param_service": "nginx", "param_count": "4",
                                                         "param_mode": "fast", "param_dry_run": "on",
                                                         "param_note": "$(id)"})
    batch = CommandBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/commands/commandbatch/{batch.pk}/change/"
    env = batch.commands.first().environment
    assert (env["RELAYHUB_PARAM_COUNT"], env["MODE"], env["RELAYHUB_PARAM_DRY_RUN"], env["RELAYHUB_PARAM_NOTE"]) == (
        "4", "fast", "true", "$(id)")
    assert Launch.objects.get().parameters["token"] == "********"


def test_a_bad_value_is_shown_on_its_field(admin_client_, template):  # noqa: F811
    response = admin_client_.post(launch_url(template), {"param_service": "Nginx; reboot"})
    assert response.status_code == 200
    assert "must match" in " ".join(response.context["form"].errors["param_service"])
    assert not CommandBatch.objects.exists()


def test_a_launch_only_operator_launches_sees_the_result_and_nothing_more(make_operator, template):  # noqa: F811
    other = JobTemplate.objects.create(name="Other", command="true", selector="role=db")
    user = make_operator("launcher")
    assign_perm("runbooks.launch_template", user, template)
    client = client_for(user)

    listing = client.get("/admin/runbooks/jobtemplate/").content.decode()
    assert "Restart service" in listing and "Other" not in listing
    assert client.get(launch_url(other)).status_code in (302, 404)
    assert client.get("/admin/commands/command/run/").status_code in (403, 404)
    response = client.post(launch_url(template), {"param_service": "nginx"})
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200, "the launcher sees what they launched"
    edit = client.post(f"/admin/runbooks/jobtemplate/{template.pk}/change/", {"name": "x", "command": "reboot"})
    assert edit.status_code == 403
    assert JobTemplate.objects.get(pk=template.pk).command.startswith("systemctl")


def test_viewing_a_template_without_launch_permission_cannot_launch(make_operator, template):  # noqa: F811
    user = make_operator("approver")
    assign_perm("runbooks.approve_template", user, template)
    assert client_for(user).post(launch_url(template), {"param_service": "nginx"}).status_code == 403
    assert not CommandBatch.objects.exists()
