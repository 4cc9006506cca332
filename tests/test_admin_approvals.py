"""Approvals in the admin: requiring approval on a relay, the approval's page, Approve and Reject, and what the
command, batch and dashboard pages say."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client

from assignments.models import RelayAssignment
from commands import approvals, batches
from commands.models import Command
from tests.conftest import mark_online

pytestmark = pytest.mark.django_db


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def db_relay(issue_relay):
    relay = issue_relay("db", "db-1").relay
    RelayAssignment.objects.filter(pk=relay.pk).update(requires_approval=True)
    mark_online(relay)
    relay.refresh_from_db()
    return relay


@pytest.fixture
def alice(make_operator, db_relay):
    return make_operator("alice", run=[db_relay])


@pytest.fixture
def bob(make_operator, db_relay):
    return make_operator("bob", approve=[db_relay])


@pytest.fixture
def held(alice):
    return Command.objects.create(machine_id="db", command="", script="#!/bin/sh\nsystemctl restart postgresql\n",
                                  interpreter="bash", working_directory="/var/lib/postgresql", run_as="postgres",
                                  environment={"PGDATA": "/srv/pg"}, secret_environment={"PGPASSWORD": "pg-admin"},
                                  created_by=alice)


def approval_page(command) -> str:
    return f"/admin/commands/approval/{approvals.of(command).pk}/change/"


def test_only_a_configurer_switches_requires_approval(db_relay, make_operator):
    runner = make_operator("runner", run=[db_relay])
    configurer = make_operator("configurer", configure=[db_relay])
    off = f"/admin/assignments/relayassignment/{db_relay.pk}/approval-optional/"

    assert signed_in(runner).post(off).status_code == 403
    assert "rh-approval-optional" not in signed_in(runner).get(
        f"/admin/assignments/relayassignment/{db_relay.pk}/change/").content.decode()
    page = signed_in(configurer).get(f"/admin/assignments/relayassignment/{db_relay.pk}/change/").content.decode()
    assert 'id="rh-approval-optional"' in page and "Commands here wait for a second person" in page
    assert signed_in(configurer).post(off).status_code == 302

    db_relay.refresh_from_db()
    assert not db_relay.requires_approval
    assert LogEntry.objects.get(object_id=str(db_relay.pk)).get_change_message() == "No longer requires approval"


def test_the_relay_form_shows_requires_approval_read_only_without_configure(db_relay, make_operator):
    changer = make_operator("changer", view=[db_relay])
    changer.user_permissions.add(Permission.objects.get(codename="change_relayassignment"))
    url = f"/admin/assignments/relayassignment/{db_relay.pk}/change/"

    page = signed_in(changer).get(url).content.decode()
    assert 'name="requires_approval"' not in page
    signed_in(changer).post(url, {"name": "db-1", "machine_id": "db", "enabled": "on", "labels": ""})
    db_relay.refresh_from_db()
    assert db_relay.requires_approval and db_relay.enabled

    changer.user_permissions.add(Permission.objects.get(codename="configure_relay"))
    changer = type(changer).objects.get(pk=changer.pk)
    assert 'name="requires_approval"' in signed_in(changer).get(url).content.decode()


def test_the_approval_page_shows_exactly_what_will_run(held, bob):
    page = signed_in(bob).get(approval_page(held)).content.decode()

    script = re.search(r'<pre class="rh-output rh-mono rh-script" id="rh-plan-script">(.*?)</pre>', page, re.S)
    assert script and script.group(1) == "#!/bin/sh\nsystemctl restart postgresql\n"
    assert '<code id="rh-plan-interpreter">bash</code>' in page
    assert '<dd id="rh-plan-working-directory">/var/lib/postgresql</dd>' in page
    assert '<dd id="rh-plan-run-as">postgres</dd>' in page
    assert "PGDATA=/srv/pg\nPGPASSWORD=******** (credential pg-admin)\n" in page
    assert '<dd id="rh-plan-target-count">1</dd>' in page and "<td>db</td>" in page
    assert "relay &#x27;db-1&#x27; requires approval" in page
    assert 'id="rh-approve"' in page and 'id="rh-reject"' in page and "csrfmiddlewaretoken" in page


def test_the_requester_sees_the_page_without_buttons(held, alice):
    page = signed_in(alice).get(approval_page(held)).content.decode()
    assert 'id="rh-approve"' not in page
    assert "You cannot decide this: you asked for this" in page
    response = signed_in(alice).post(approval_page(held).replace("change/", "approve/"))
    assert response.status_code == 302
    assert approvals.of(held).state == "pending"


def test_approving_in_the_admin_queues_it_and_the_command_page_says_who(held, bob):
    client = signed_in(bob)

    response = client.post(approval_page(held).replace("change/", "approve/"), {"reason": "ticket 42"})

    assert response.status_code == 302 and response["Location"] == f"/admin/commands/command/{held.pk}/change/"
    held.refresh_from_db()
    assert held.status == "pending"
    page = client.get(response["Location"]).content.decode()
    assert re.search(r"Approved by bob at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+: ticket 42 \(requested by alice", page)
    assert LogEntry.objects.filter(object_id=str(approvals.of(held).pk), change_message="Approved: ticket 42").exists()


def test_rejecting_in_the_admin_needs_a_reason(held, bob):
    client = signed_in(bob)
    reject = approval_page(held).replace("change/", "reject/")

    refused = client.post(reject, {"reason": ""}, follow=True)
    assert "Say why it is rejected." in refused.content.decode()
    assert approvals.of(held).state == "pending"

    client.post(reject, {"reason": "use the maintenance window"})
    held.refresh_from_db()
    assert (held.status, held.error) == ("cancelled", "rejected by bob: use the maintenance window")
    page = client.get(f"/admin/commands/command/{held.pk}/change/").content.decode()
    assert "Rejected by bob at" in page and "use the maintenance window" in page


def test_deciding_needs_post_and_csrf(held, bob):
    strict = signed_in(bob, enforce_csrf_checks=True)
    approve = approval_page(held).replace("change/", "approve/")
    assert strict.get(approve).status_code == 405
    assert strict.post(approve).status_code == 403
    assert approvals.of(held).state == "pending"


def test_the_list_puts_pending_first_and_filters_by_state(alice, bob, db_relay):
    first = Command.objects.create(machine_id="db", command="echo first", created_by=alice)
    second = Command.objects.create(machine_id="db", command="echo second", created_by=alice)
    approvals.approve(approvals.of(first), bob)
    client = signed_in(bob)

    page = client.get("/admin/commands/approval/").content.decode()
    assert page.index("echo second") < page.index("echo first")
    approved = client.get("/admin/commands/approval/?state__exact=approved").content.decode()
    assert "echo first" in approved and "echo second" not in approved
    assert second.status == "awaiting_approval"


def test_a_stranger_sees_no_approval(held, make_operator, issue_relay):
    stranger = make_operator("stranger", run=[issue_relay("web", "web-1").relay])
    client = signed_in(stranger)
    assert client.get(approval_page(held)).status_code in (302, 404)
    assert "systemctl" not in client.get("/admin/commands/approval/").content.decode()


def test_the_batch_page_says_it_awaits_approval(alice, bob, issue_relay):
    from guardian.shortcuts import assign_perm

    web = issue_relay("web", "web-1").relay
    mark_online(web)
    for perm in ("assignments.view_relay", "assignments.approve_command"):
        assign_perm(perm, bob, web)
    batch = batches.create(machine_ids=["web", "db"], command="uptime", created_by=alice)

    page = signed_in(bob).get(f"/admin/commands/commandbatch/{batch.pk}/change/").content.decode()

    assert 'id="rh-batch-status" class="rh-badge rh-awaiting_approval">awaiting_approval<' in page
    assert page.count("waiting for approval") == 2 and "Awaiting approval: requested by alice" in page
    assert 'data-finished="false"' in page and "Review and decide" in page


def test_the_dashboard_counts_what_awaits_the_user(held, alice, bob):
    assert 'data-testid="approvals-waiting">1<' in signed_in(bob).get("/admin/").content.decode()
    assert "approvals-waiting" not in signed_in(alice).get("/admin/").content.decode()
