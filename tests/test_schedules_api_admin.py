"""Schedules in the REST API and the admin: who may schedule what, next run and last run, enable and disable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from guardian.shortcuts import assign_perm

from assignments.models import RelayStatus
from runbooks import scheduling
from runbooks.models import JobTemplate, RunState, ScheduledRun, TemplateSchedule
from tests.conftest import api_client_for, mark_online

pytestmark = pytest.mark.django_db
BODY = {"name": "hourly", "cron": "0 * * * *", "timezone": "Europe/Berlin", "parameters": {"target": "db"}}


@pytest.fixture
def templates(issue_relay):
    relay = issue_relay("web-0", "web-0").relay
    relay.labels = {"role": "web"}
    relay.save()
    RelayStatus.objects.update(capabilities=["local_cmd", "run_options"])
    mark_online(relay)
    parameters = [{"name": "target", "type": "string", "pattern": "[a-z]+", "required": True}]
    return [JobTemplate.objects.create(name=name, command="backup", selector="role=web", parameters=parameters)
            for name in ("Backup", "Restore")]


def scheduler_user(name: str = "sched", *, actions=("view", "add", "change", "delete"), launch=()) -> User:
    user = User.objects.create_user(name, password="pw-sched-123456", is_staff=True)
    for verb in actions:
        user.user_permissions.add(Permission.objects.get(codename=f"{verb}_templateschedule"))
    for template in launch:
        assign_perm("runbooks.launch_template", user, template)
    return User.objects.get(pk=user.pk)


def test_a_schedule_made_through_the_api_runs_as_its_maker(admin_api, admin_user_api, templates):
    response = admin_api.post("/api/v1/schedules/", {**BODY, "template": templates[0].pk}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == "root" and body["when"].startswith("Every hour") and body["last_run"] is None
    assert body["next_run_at"].endswith((":00:00Z", ":00:00+00:00")) and body["overlap"] == "skip"
    schedule = TemplateSchedule.objects.get(pk=body["id"])
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).crontab.hour == "*"

    run = scheduling.fire(schedule.pk, timezone.now())
    listed = admin_api.get("/api/v1/schedules/").json()["results"][0]
    assert listed["last_run"]["state"] == "launched"
    runs = admin_api.get(f"/api/v1/schedules/{schedule.pk}/runs/").json()
    assert runs["count"] == 1 and runs["results"][0]["batch"] == run.launch.batch_id
    assert admin_api.get(f"/api/v1/schedules/{schedule.pk}/runs/?state=never_started").json()["count"] == 0
    assert admin_api.get(f"/api/v1/schedules/{schedule.pk}/runs/?state=bogus").status_code == 400

    assert admin_api.patch(f"/api/v1/schedules/{schedule.pk}/", {"enabled": False}, format="json").status_code == 200
    assert not PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled
    assert admin_api.delete(f"/api/v1/schedules/{schedule.pk}/").status_code == 204
    assert not PeriodicTask.objects.filter(name__startswith="runbooks.schedule.").exists()


@pytest.mark.parametrize(("change", "field"), [
    ({"cron": "0 25 * * *"}, "cron"), ({"cron": "", "interval_seconds": None}, "cron"),
    ({"cron": "", "interval_seconds": 1}, "interval_seconds"), ({"cron": "", "interval_seconds": 10**30}, "interval_seconds"),
    ({"timezone": "CET+1"}, "timezone"), ({"parameters": {"target": "$(id)"}}, "parameters"),
    ({"time_to_live": 0}, "time_to_live"), ({"overlap": "pile-up"}, "overlap"), ({"selector": "a in ("}, "selector"),
])
def test_a_bad_schedule_is_a_400_naming_the_field(admin_api, templates, change, field):
    response = admin_api.post("/api/v1/schedules/", {**BODY, "template": templates[0].pk, **change}, format="json")
    assert response.status_code == 400 and field in response.json()["fields"], response.json()
    assert not TemplateSchedule.objects.exists() and not PeriodicTask.objects.exists()


def test_nobody_schedules_what_they_could_not_launch(templates):
    backup, restore = templates
    user = scheduler_user(launch=[backup])
    assign_perm("runbooks.approve_template", user, restore)  # sees Restore, may not launch it
    client = api_client_for(user)
    refused = client.post("/api/v1/schedules/", {**BODY, "template": restore.pk}, format="json")
    assert refused.status_code == 403 and "launch_template" in refused.json()["error"]
    made = client.post("/api/v1/schedules/", {**BODY, "template": backup.pk}, format="json")
    assert made.status_code == 201
    moved = client.patch(f"/api/v1/schedules/{made.json()['id']}/", {"template": restore.pk}, format="json")
    assert moved.status_code == 403
    assert TemplateSchedule.objects.get().template == backup

    other = TemplateSchedule.objects.create(template=restore, name="theirs", interval_seconds=60,
                                            parameters={"target": "db"})
    assert client.patch(f"/api/v1/schedules/{other.pk}/", {"enabled": False}, format="json").status_code == 403
    assert client.delete(f"/api/v1/schedules/{other.pk}/").status_code == 403

    launcher = api_client_for(scheduler_user("launcher", actions=(), launch=[backup, restore]))
    assert launcher.get("/api/v1/schedules/").json()["count"] == 0
    assert launcher.post("/api/v1/schedules/", {**BODY, "template": backup.pk}, format="json").status_code == 403
    stranger = api_client_for(scheduler_user("stranger"))
    assert stranger.get(f"/api/v1/schedules/{other.pk}/").status_code == 404
    assert stranger.get(f"/api/v1/schedules/{other.pk}/runs/").status_code == 404


def test_whoever_saves_a_schedule_owns_it(templates):
    alice = scheduler_user("alice", launch=templates)
    bob = scheduler_user("bob", launch=templates)
    made = api_client_for(alice).post("/api/v1/schedules/", {**BODY, "template": templates[0].pk}, format="json")
    assert made.json()["owner"] == "alice"
    changed = api_client_for(bob).patch(f"/api/v1/schedules/{made.json()['id']}/", {"name": "by bob"},
                                        format="json")
    assert changed.json()["owner"] == "bob" and TemplateSchedule.objects.get().owner == bob


def test_the_schedules_are_in_the_openapi_schema(admin_client_):
    schema = admin_client_.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/schedules/{id}/runs/" in schema and "next_run_at" in schema


@pytest.fixture
def schedule(templates, admin_user_api):
    return TemplateSchedule.objects.create(template=templates[0], name="nightly", cron="30 2 * * *",
                                           timezone="Europe/Berlin", parameters={"target": "db"},
                                           owner=admin_user_api)


def test_the_schedule_list_shows_timing_next_run_and_a_never_started_run_in_red(admin_client_, schedule):
    ScheduledRun.objects.create(schedule=schedule, slot=timezone.now() - timedelta(hours=1),
                                state=RunState.NEVER_STARTED, reason="no relay claimed 1 target(s): web-0")
    page = admin_client_.get("/admin/runbooks/templateschedule/").content.decode()
    assert "At 02:30" in page and "Europe/Berlin" in page
    assert "02:30:00 CE" in page  # the next run, in the schedule's own time zone (CET or CEST)
    assert 'rh-badge rh-never_started' in page and "never started in the last 24 h" in page
    runs = admin_client_.get("/admin/runbooks/scheduledrun/?state__exact=never_started").content.decode()
    assert "rh-never_started" in runs and "web-0" in runs
    assert admin_client_.get("/admin/django_celery_beat/periodictask/").status_code == 404
    change = admin_client_.get(f"/admin/runbooks/templateschedule/{schedule.pk}/change/").content.decode()
    assert "All runs of this schedule" in change and "rh-never_started" in change and "web-0" in change


def test_the_admin_form_makes_the_saver_the_owner_and_actions_enable_and_disable(admin_client_, admin_user_api,
                                                                                templates):
    response = admin_client_.post("/admin/runbooks/templateschedule/add/", {
        "template": templates[1].pk, "name": "every 5 min", "enabled": "on", "cron": "", "interval_seconds": "300",
        "timezone": "UTC", "parameters": '{"target": "db"}', "selector": "", "overlap": "queue",
        "time_to_live": "600"})
    assert response.status_code == 302, response.content.decode()[:3000]
    schedule = TemplateSchedule.objects.get()
    assert schedule.owner == admin_user_api and schedule.when == "every 5 min"
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.interval.every == 300 and task.enabled
    for verb, enabled in (("disable", False), ("enable", True)):
        admin_client_.post("/admin/runbooks/templateschedule/", {"action": f"{verb}_schedules",
                                                                 "_selected_action": [schedule.pk]})
        task.refresh_from_db()
        assert task.enabled is enabled and TemplateSchedule.objects.get().enabled is enabled


def test_in_the_admin_a_schedule_of_a_template_one_cannot_launch_is_read_only(schedule, templates):
    user = scheduler_user(launch=[templates[1]])
    assign_perm("runbooks.view_jobtemplate", user, templates[0])
    client = Client()
    client.force_login(user)
    url = f"/admin/runbooks/templateschedule/{schedule.pk}/change/"
    assert client.get(url).status_code == 200
    client.post(url, {"template": templates[0].pk, "name": "changed", "enabled": "", "cron": "* * * * *",
                      "interval_seconds": "", "timezone": "UTC", "parameters": '{"target": "db"}', "selector": "",
                      "overlap": "skip", "time_to_live": "600"})
    assert TemplateSchedule.objects.get().name == "nightly"
    client.post("/admin/runbooks/templateschedule/", {"action": "disable_schedules",
                                                      "_selected_action": [schedule.pk]})
    assert TemplateSchedule.objects.get().enabled
