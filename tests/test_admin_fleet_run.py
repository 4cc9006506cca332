"""The run form's SSH targets mode, its live preview endpoint, and the batch page's "Rerun failed targets"."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry

from assignments.labels import LabelError, parse_selector
from assignments.models import RelayAssignment
from commands.models import Command, CommandBatch
from fleet.models import SSHTarget
from tests.conftest import mark_online

pytestmark = pytest.mark.django_db

RUN = "/admin/commands/command/run/"
PREVIEW = "/admin/fleet/sshtarget/preview/"


@pytest.fixture
def gateway():
    relay = RelayAssignment.issue(machine_id="gw-1", name="gateway-1").relay
    mark_online(relay)
    return relay


@pytest.fixture
def targets(gateway):
    made = {}
    for name, labels in [("web-01", {"env": "prod", "role": "web"}), ("api-01", {"env": "prod", "role": "api"}),
                         ("db-01", {"env": "prod", "role": "db"}), ("web-dev", {"env": "dev", "role": "web"})]:
        made[name] = SSHTarget.objects.create(name=name, host=f"10.0.0.{len(made) + 1}", username="ops",
                                              labels=labels)
        made[name].relays.add(gateway)
    return made


def client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def by_selector(**fields) -> dict:
    return {"mode": "targets", "selector": "env=prod,role in (web,api)", "command": "uptime", "target_type": "local",
            "timeout_s": "10", "priority": "5", **fields}


def test_preview_lists_what_the_selector_matches_with_address_relays_and_state(admin_client_, targets):
    body = admin_client_.get(PREVIEW, {"selector": "env=prod,role in (web,api)"}).json()

    assert [row["name"] for row in body["targets"]] == ["api-01", "web-01"]
    assert (body["count"], body["online"]) == (2, 2)
    api = body["targets"][0]
    assert api["address"] == "10.0.0.2:22" and api["username"] == "ops"
    assert api["relays"] == [{"name": "gateway-1", "machine_id": "gw-1", "state": "online"}]
    assert api["online"] is True and api["may_run"] is True


def test_preview_adds_the_chosen_targets_and_shows_offline_ones(admin_client_, targets, gateway):
    gateway.status.last_heartbeat_at = None
    gateway.status.save()

    body = admin_client_.get(PREVIEW, {"selector": "role=db", "targets": [targets["web-dev"].pk, "x"]}).json()

    assert [row["name"] for row in body["targets"]] == ["db-01", "web-dev"]
    assert body["online"] == 0 and body["targets"][0]["relays"][0]["state"] == "offline"


def test_a_malformed_selector_is_a_400_with_the_parsers_message(admin_client_, targets):
    response = admin_client_.get(PREVIEW, {"selector": "env in (prod"})

    with pytest.raises(LabelError) as parsed:
        parse_selector("env in (prod")
    assert response.status_code == 400
    assert response.json() == {"error": str(parsed.value), "field": "selector"}


def test_a_user_who_cannot_see_the_relay_sees_none_of_its_targets(make_operator, targets, gateway):
    elsewhere = RelayAssignment.issue(machine_id="other", name="other relay").relay
    outsider = client_for(make_operator("outsider", run=[elsewhere]))
    viewer = client_for(make_operator("viewer", view=[gateway]))

    assert outsider.get(PREVIEW, {"selector": "env"}).json()["targets"] == []
    seen = viewer.get(PREVIEW, {"selector": "env=prod"}).json()["targets"]
    assert len(seen) == 3 and not any(row["may_run"] for row in seen)
    assert client_for(make_operator("nobody")).get(PREVIEW, {"selector": "env"}).status_code in (302, 403)


def test_the_run_form_offers_targets_and_opens_in_targets_mode_from_a_selector(admin_client_, targets):
    targets_page = admin_client_.get("/admin/fleet/sshtarget/", {"selector": "role=web"}).content.decode()
    assert f'href="{RUN}?selector=role%3Dweb" id="rh-run-selector"' in targets_page

    form = admin_client_.get(RUN, {"selector": "role=web"}).context["form"]

    assert form.initial["mode"] == "targets" and form.initial["selector"] == "role=web"
    assert [label.split(" — ")[0] for _, label in form.fields["targets"].choices] == ["api-01", "db-01", "web-01",
                                                                                      "web-dev"]


def test_running_by_selector_makes_a_batch_of_the_matched_targets(admin_client_, admin_user_api, targets):
    response = admin_client_.post(RUN, by_selector(max_concurrency="50%", max_errors="0"))

    batch = CommandBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/commands/commandbatch/{batch.pk}/change/"
    assert [d["name"] for d in batch.destinations] == ["api-01", "web-01"]
    assert batch.selector == "env=prod,role in (web,api)" and batch.target_type == "ssh"
    assert (batch.max_concurrency, batch.max_errors, batch.created_by) == (1, 0, admin_user_api)
    assert list(batch.commands.values_list("target_name", "target_host", "status")) == [("api-01", "10.0.0.2",
                                                                                         "pending")]
    assert LogEntry.objects.filter(object_id=str(batch.pk), action_flag=ADDITION).exists()


def test_chosen_targets_join_the_selectors_matches(admin_client_, targets):
    admin_client_.post(RUN, by_selector(selector="role=db", targets=[targets["web-dev"].pk, targets["db-01"].pk]))

    assert [d["name"] for d in CommandBatch.objects.get().destinations] == ["db-01", "web-dev"]


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"selector": "env in (prod"}, "selector", "env in (prod"),
    ({"selector": "env=staging"}, "selector", "matches no enabled SSH target"),
    ({"selector": ""}, "selector", "Type a selector or choose SSH targets."),
    ({"target_host": "10.9.9.9"}, "target_host", "come from the SSH targets"),
    ({"max_errors": "150%"}, "max_errors", "percentage from 0% to 100%"),
])
def test_the_targets_mode_says_what_is_wrong(admin_client_, targets, fields, field, message):
    response = admin_client_.post(RUN, by_selector(**fields))

    assert response.status_code == 200 and not CommandBatch.objects.exists()
    assert message in " ".join(response.context["form"].errors[field])


def test_a_viewer_of_the_targets_relay_gets_an_error_not_a_batch(make_operator, targets, gateway):
    elsewhere = RelayAssignment.issue(machine_id="other", name="other relay").relay
    viewer = client_for(make_operator("viewer", view=[gateway], run=[elsewhere]))

    response = viewer.post(RUN, by_selector())

    assert response.status_code == 200 and not CommandBatch.objects.exists() and not Command.objects.exists()
    assert "you may not run commands on the relays of SSH target" in response.context["form"].non_field_errors()[0]


def test_machine_mode_takes_percentages_too(admin_client_, issue_relay):
    for machine in "abcd":
        issue_relay(machine, f"relay-{machine}")

    admin_client_.post(RUN, {"mode": "machines", "machines": list("abcd"), "command": "id", "target_type": "local",
                             "timeout_s": "5", "priority": "5", "max_concurrency": "25%", "max_errors": "50%"})

    batch = CommandBatch.objects.get()
    assert (batch.max_concurrency, batch.max_errors) == (1, 2)


@pytest.fixture
def undelivered_batch(admin_client_, targets, gateway):
    """The gateway is offline: both copies are recorded as not delivered."""
    gateway.status.last_heartbeat_at = None
    gateway.status.save()
    admin_client_.post(RUN, by_selector())
    return CommandBatch.objects.get()


def test_the_batch_page_labels_rows_by_target_and_counts_what_was_not_delivered(admin_client_, undelivered_batch):
    page = admin_client_.get(f"/admin/commands/commandbatch/{undelivered_batch.pk}/change/").content.decode()

    assert '<li data-count="not_delivered"><span class="rh-badge rh-not_delivered">not delivered</span> ' \
           '<b data-field="value">2</b>' in page
    assert 'data-count="failed_runs"' in page and 'data-count="total"' in page
    assert 'data-field="name">api-01</a>' in page and "10.0.0.2 via gw-1" in page
    assert "no enabled relay is online for machine &#x27;gw-1&#x27;" in page
    assert 'id="rh-rerun-failed"' in page and "rh-rerun-failed-item\">" in page  # shown, not hidden


def test_rerun_failed_targets_makes_a_new_batch_and_opens_it(admin_client_, undelivered_batch, gateway):
    mark_online(gateway)
    url = f"/admin/commands/commandbatch/{undelivered_batch.pk}/rerun-failed/"

    assert admin_client_.get(url).status_code == 405
    response = admin_client_.post(url)

    new = CommandBatch.objects.exclude(pk=undelivered_batch.pk).get()
    assert response["Location"] == f"/admin/commands/commandbatch/{new.pk}/change/"
    assert [d["name"] for d in new.destinations] == ["api-01", "web-01"]
    assert set(new.commands.values_list("status", flat=True)) == {"pending"}
    assert LogEntry.objects.get(object_id=str(new.pk)).change_message == (
        f"Rerun of the failed targets of batch #{undelivered_batch.pk}")


def test_rerun_failed_needs_run_permission(make_operator, undelivered_batch, gateway):
    url = f"/admin/commands/commandbatch/{undelivered_batch.pk}/rerun-failed/"
    elsewhere = RelayAssignment.issue(machine_id="other", name="other relay").relay
    viewer = client_for(make_operator("viewer", view=[gateway], run=[elsewhere]))
    outsider = client_for(make_operator("outsider", run=[elsewhere]))

    assert viewer.post(url).status_code == 403
    assert outsider.post(url).status_code == 404
    assert CommandBatch.objects.count() == 1
    page = viewer.get(f"/admin/commands/commandbatch/{undelivered_batch.pk}/change/").content.decode()
    assert page.count("<tr data-machine=") == 2


def test_rerun_failed_with_nothing_failed_says_so(admin_client_, targets):
    admin_client_.post(RUN, by_selector())
    batch = CommandBatch.objects.get()

    response = admin_client_.post(f"/admin/commands/commandbatch/{batch.pk}/rerun-failed/", follow=True)

    assert CommandBatch.objects.count() == 1
    assert "No target of this batch failed or went undelivered" in response.content.decode()
