"""Template schedules: slots, one run per slot, the overlap rule, never-started runs, and beat's periodic tasks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry
from guardian.shortcuts import assign_perm, remove_perm

from assignments.models import RelayStatus
from commands.models import Command, CommandBatch
from relayhub.celery import app
from runbooks import scheduling, tasks, timing
from runbooks.beat import Scheduler
from runbooks.models import JobTemplate, Overlap, RunState, ScheduledRun, TemplateSchedule
from runbooks.signals import scheduled_run_never_started
from tests.conftest import mark_online

pytestmark = pytest.mark.django_db
BERLIN = timing.zone("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("fired", "slot"), [
    (utc(2026, 3, 29, 1, 0), utc(2026, 3, 28, 1, 30)),   # 03:00 summer time: 02:30 has not come yet
    (utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 1, 30)),  # the skipped 02:30 comes at 03:30 summer time
    (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 0, 30)),  # 02:30 summer time, the first of two
    (utc(2026, 10, 25, 1, 31), utc(2026, 10, 25, 0, 30)),  # 02:31 winter time: the second 02:30 is not a slot
    (utc(2026, 7, 1, 12, 0), utc(2026, 7, 1, 0, 30)),
])
def test_cron_slots_in_a_time_zone_across_daylight_saving(fired, slot):
    assert timing.cron_slot(timing.parse_cron("30 2 * * *"), BERLIN, fired) == slot


def test_cron_next_run_skips_the_repeated_hour_and_finds_february_29():
    cron = timing.parse_cron("30 2 * * *")
    assert timing.cron_next(cron, BERLIN, utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 26, 1, 30)
    leap = timing.parse_cron("0 0 29 2 *")
    assert timing.cron_next(leap, timing.zone("UTC"), utc(2026, 3, 1)) == utc(2028, 2, 29)
    assert timing.describe_interval(300) == "every 5 min" and timing.describe_interval(7) == "every 7 s"
    assert "02:30" in timing.describe_cron("30 2 * * *")


@pytest.fixture
def relays(issue_relay):
    made = [issue_relay(f"web-{n}", f"web-{n}") for n in range(2)]
    for issued in made:
        issued.relay.labels = {"role": "web"}
        issued.relay.save()
    RelayStatus.objects.update(capabilities=["local_cmd", "run_options"])
    mark_online(*(issued.relay for issued in made))
    return [issued.relay for issued in made]


@pytest.fixture
def owner(db):
    return User.objects.create_user("scheduler", password="pw-sched-123456", is_staff=True)


@pytest.fixture
def template(relays):
    return JobTemplate.objects.create(name="Backup", command='backup "$RELAYHUB_PARAM_TARGET"', selector="role=web",
                                      parameters=[{"name": "target", "type": "string", "pattern": "[a-z]+",
                                                   "required": True},
                                                  {"name": "token", "type": "secret", "credential": "x"}])


@pytest.fixture
def schedule(template, owner):
    assign_perm("runbooks.launch_template", owner, template)
    return TemplateSchedule.objects.create(template=template, name="nightly", interval_seconds=60,
                                           parameters={"target": "db"}, owner=owner, time_to_live=600)


def test_saving_a_schedule_keeps_its_periodic_task_in_step(template, owner):
    cron = TemplateSchedule.objects.create(template=template, name="weekdays", cron="30  2 * * 1-5",
                                           timezone="Europe/Berlin", parameters={"target": "db"}, owner=owner)
    task = PeriodicTask.objects.get(pk=cron.periodic_task_id)
    assert task.task == "runbooks.tasks.run_schedule" and task.kwargs == f'{{"schedule_id": {cron.pk}}}'
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "2", "1-5")
    assert str(task.crontab.timezone) == "Europe/Berlin" and task.interval is None and task.enabled

    cron.cron, cron.interval_seconds = "", 300
    cron.save()
    task.refresh_from_db()
    assert task.crontab is None and task.interval.every == 300 and task.interval.period == "seconds"
    cron.enabled = False
    cron.save()
    task.refresh_from_db()
    assert not task.enabled
    assert cron.next_run_at() is None
    cron.delete()
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize(("fields", "field"), [
    ({"cron": "", "interval_seconds": None}, "cron"),
    ({"cron": "* * * * *", "interval_seconds": 60}, "cron"),
    ({"cron": "61 * * * *", "interval_seconds": None}, "cron"),
    ({"cron": "0 0 1 * 1", "interval_seconds": None}, "cron"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"parameters": {"target": "x; rm -rf /"}}, "parameters"),
    ({"parameters": {}}, "parameters"),
    ({"parameters": {"target": "db", "token": "given"}}, "parameters"),
    ({"selector": "role in ("}, "selector"),
])
def test_a_schedule_is_validated_against_its_template(schedule, fields, field):
    for name, value in fields.items():
        setattr(schedule, name, value)
    with pytest.raises(ValidationError) as caught:
        schedule.full_clean()
    assert field in caught.value.message_dict


def test_a_run_launches_the_template_as_its_owner_with_its_parameters(schedule, owner, relays):
    fired = timezone.now()
    run = scheduling.fire(schedule.pk, fired)
    assert run.state == RunState.LAUNCHED and run.slot == fired and run.reason == ""
    assert run.launch.launched_by == owner and run.launch.batch.created_by == owner
    copies = list(Command.objects.order_by("machine_id"))
    assert [c.machine_id for c in copies] == ["web-0", "web-1"]
    assert copies[0].environment["RELAYHUB_PARAM_TARGET"] == "db" and copies[0].created_by == owner
    assert run.start_by == fired + timedelta(seconds=600)


def test_a_slot_runs_once_however_often_beat_sends_it(schedule):
    fired = timezone.now() - timedelta(seconds=5)
    assert scheduling.fire(schedule.pk, fired).state == RunState.LAUNCHED
    assert scheduling.fire(schedule.pk, fired) is None  # redelivered
    # A beat restarted before it saved its last run sends it again, sooner than the interval.
    assert scheduling.fire(schedule.pk, fired + timedelta(seconds=30)) is None
    assert tasks.run_schedule(schedule.pk, (fired + timedelta(seconds=59.4)).isoformat()) == "none"
    assert ScheduledRun.objects.count() == 1 and CommandBatch.objects.count() == 1
    Command.objects.update(status="completed", exit_code=0, completed_at=timezone.now())
    assert tasks.run_schedule(schedule.pk, (fired + timedelta(seconds=60)).isoformat()) == "launched"
    assert ScheduledRun.objects.count() == 2 and CommandBatch.objects.count() == 2


def test_a_cron_slot_is_the_due_time_whenever_the_message_arrives(schedule):
    schedule.cron, schedule.interval_seconds, schedule.timezone = "*/5 * * * *", None, "Asia/Kolkata"
    schedule.save()
    now = timezone.now()
    due = timing.cron_slot(timing.parse_cron("*/5 * * * *"), timing.zone("Asia/Kolkata"), now)
    run = scheduling.fire(schedule.pk, due + timedelta(milliseconds=40))
    assert run.slot == due and due.second == 0
    assert scheduling.fire(schedule.pk, due + timedelta(seconds=3)) is None
    assert schedule.next_run_at(now) == due + timedelta(minutes=5)


def test_overlap_skip_records_a_skipped_run_while_the_previous_one_goes(schedule):
    first = scheduling.fire(schedule.pk, timezone.now() - timedelta(seconds=60))
    second = scheduling.fire(schedule.pk, timezone.now())
    assert second.state == RunState.SKIPPED_OVERLAP and second.launch is None
    assert "still going" in second.reason and CommandBatch.objects.count() == 1
    Command.objects.update(status="completed", exit_code=0, completed_at=timezone.now())
    third = scheduling.fire(schedule.pk, timezone.now() + timedelta(seconds=60))
    assert third.state == RunState.LAUNCHED and first.launch.batch != third.launch.batch


def test_overlap_queue_starts_one_queued_run_once_the_previous_one_ended(schedule):
    schedule.overlap = Overlap.QUEUE
    schedule.save()
    now = timezone.now()
    first = scheduling.fire(schedule.pk, now - timedelta(seconds=120))
    queued = scheduling.fire(schedule.pk, now - timedelta(seconds=60))
    extra = scheduling.fire(schedule.pk, now)
    assert queued.state == RunState.QUEUED and queued.launch is None
    assert extra.state == RunState.SKIPPED_OVERLAP and "queued already" in extra.reason
    assert scheduling.sweep() == 0  # the first run is still going
    Command.objects.filter(batch=first.launch.batch).update(status="completed", exit_code=0,
                                                              completed_at=timezone.now())
    assert scheduling.sweep() == 1
    queued.refresh_from_db()
    assert queued.state == RunState.LAUNCHED and queued.launch.batch.commands.count() == 2
    assert CommandBatch.objects.count() == 2


@pytest.fixture
def reports():
    seen = []

    def receive(sender, run, schedule, targets, **kwargs):
        seen.append((run.pk, schedule.pk, targets))

    scheduled_run_never_started.connect(receive, dispatch_uid="test-never-started")
    yield seen
    scheduled_run_never_started.disconnect(dispatch_uid="test-never-started")


def test_a_run_no_relay_claims_within_its_time_to_live_never_started(schedule, relays, reports, caplog,
                                                                    django_capture_on_commit_callbacks):
    run = scheduling.fire(schedule.pk, timezone.now())
    late = run.start_by + timedelta(seconds=1)
    assert scheduling.sweep(run.start_by - timedelta(seconds=1)) == 0
    with caplog.at_level(logging.WARNING, logger="runbooks.scheduling"), \
            django_capture_on_commit_callbacks(execute=True):
        assert scheduling.sweep(late) == 1
    run.refresh_from_db()
    assert run.state == RunState.NEVER_STARTED and run.start_by is None
    assert "no relay claimed 2 target(s) within 600 s" in run.reason and "web-0, web-1" in run.reason
    assert set(Command.objects.values_list("status", flat=True)) == {"cancelled"}
    assert run.launch.batch.stopped  # nothing waiting is sent after them
    assert reports == [(run.pk, schedule.pk, ["web-0", "web-1"])]
    assert "scheduled run never started" in caplog.text and "web-0" in caplog.text
    assert scheduling.sweep(late + timedelta(seconds=5)) == 0  # reported once


def test_only_the_targets_never_claimed_are_withdrawn(schedule, relays, reports,
                                                     django_capture_on_commit_callbacks):
    run = scheduling.fire(schedule.pk, timezone.now())
    assert Command.objects.get(machine_id="web-0").claim(relays[0])
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduling.sweep(run.start_by + timedelta(seconds=1)) == 1
    run.refresh_from_db()
    assert run.state == RunState.NEVER_STARTED and run.reason.endswith(": web-1")
    assert dict(Command.objects.values_list("machine_id", "status")) == {"web-0": "claimed", "web-1": "cancelled"}
    assert not run.launch.batch.stopped and reports == [(run.pk, schedule.pk, ["web-1"])]


def test_a_run_whose_targets_were_all_claimed_stays_launched(schedule, relays):
    run = scheduling.fire(schedule.pk, timezone.now())
    for relay in relays:
        assert Command.objects.get(machine_id=relay.machine_id).claim(relay)
    assert scheduling.sweep(run.start_by + timedelta(seconds=1)) == 0
    run.refresh_from_db()
    assert run.state == RunState.LAUNCHED and run.start_by is None


def test_a_queued_run_past_its_time_to_live_never_started(schedule, relays, reports,
                                                          django_capture_on_commit_callbacks):
    schedule.overlap = Overlap.QUEUE
    schedule.save()
    scheduling.fire(schedule.pk, timezone.now() - timedelta(seconds=60))
    for relay in relays:  # the first run started, and hangs
        assert Command.objects.get(machine_id=relay.machine_id).claim(relay)
    queued = scheduling.fire(schedule.pk, timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduling.sweep(queued.start_by + timedelta(seconds=1)) == 1
    queued.refresh_from_db()
    assert queued.state == RunState.NEVER_STARTED and "still queued" in queued.reason
    assert [pk for pk, *_ in reports] == [queued.pk]


def test_a_run_sent_too_late_is_never_started_not_launched(schedule, reports, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = scheduling.fire(schedule.pk, timezone.now() - timedelta(seconds=601))
    assert run.state == RunState.NEVER_STARTED and "past its time to live of 600 s" in run.reason
    assert not CommandBatch.objects.exists() and reports == [(run.pk, schedule.pk, [])]


def test_an_owner_who_lost_launch_permission_gets_a_failed_run(schedule, owner, template, caplog):
    remove_perm("runbooks.launch_template", owner, template)
    owner = User.objects.get(pk=owner.pk)  # no cached permissions
    with caplog.at_level(logging.WARNING, logger="runbooks.scheduling"):
        run = scheduling.fire(schedule.pk, timezone.now())
    assert run.state == RunState.FAILED and "may not launch the template 'Backup'" in run.reason
    assert run.launch is None and not CommandBatch.objects.exists() and "not launched" in caplog.text
    owner.is_active = False
    assign_perm("runbooks.launch_template", owner, template)
    owner.save()
    assert scheduling.fire(schedule.pk, timezone.now() + timedelta(seconds=60)).state == RunState.FAILED


def test_a_run_that_cannot_launch_fails_with_the_reason(schedule, template):
    JobTemplate.objects.filter(pk=template.pk).update(selector="role=db")
    run = scheduling.fire(schedule.pk, timezone.now())
    assert run.state == RunState.FAILED and "matches nothing enabled" in run.reason


def test_a_disabled_or_deleted_schedule_runs_nothing(schedule):
    schedule.enabled = False
    schedule.save()
    assert scheduling.fire(schedule.pk, timezone.now()) is None
    assert scheduling.fire(10**9, timezone.now()) is None
    assert not ScheduledRun.objects.exists()


def test_beat_stamps_each_schedule_message_with_when_it_sent_it(schedule):
    scheduler = Scheduler(app=app, lazy=True)
    entry = ModelEntry(PeriodicTask.objects.get(pk=schedule.periodic_task_id), app=app)
    before = timezone.now()
    with mock.patch.object(tasks.run_schedule, "apply_async") as sent:
        scheduler.apply_async(entry, advance=False)
    args, kwargs = sent.call_args.args
    assert args == [] and kwargs["schedule_id"] == schedule.pk
    assert before <= datetime.fromisoformat(kwargs["fired_at"]) <= timezone.now()


def test_an_interval_run_delivered_again_long_after_is_recorded_not_dropped(schedule):
    lost = timezone.now() - timedelta(seconds=300)
    later = scheduling.fire(schedule.pk, timezone.now() - timedelta(seconds=120))
    assert later.state == RunState.LAUNCHED
    Command.objects.update(status="completed", exit_code=0, completed_at=timezone.now())
    redelivered = scheduling.fire(schedule.pk, lost)  # a worker died with it; the broker handed it on
    assert redelivered.slot == lost and redelivered.state == RunState.LAUNCHED
    assert scheduling.fire(schedule.pk, lost + timedelta(seconds=30)) is None


def test_due_times_beat_never_sent_are_recorded_never_started_once_past_their_time_to_live(
        schedule, reports, django_capture_on_commit_callbacks):
    schedule.cron, schedule.interval_seconds = "*/5 * * * *", None
    schedule.save()
    now = utc(2026, 6, 1, 12, 2)
    TemplateSchedule.objects.filter(pk=schedule.pk).update(checked_until=utc(2026, 6, 1, 11, 0))
    ScheduledRun.objects.create(schedule=schedule, slot=utc(2026, 6, 1, 11, 5), state=RunState.LAUNCHED)
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduling.sweep(now) == 9  # 11:10 to 11:50; 11:55 and 12:00 are within their ten minutes
    missed = ScheduledRun.objects.filter(state=RunState.NEVER_STARTED).order_by("slot")
    assert [run.slot.minute for run in missed] == [10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert "beat did not send it" in missed[0].reason and len(reports) == 9
    assert TemplateSchedule.objects.get(pk=schedule.pk).checked_until == now - timedelta(seconds=600)
    assert scheduling.sweep(now) == 0


def test_an_interval_with_no_run_for_longer_than_its_time_to_live_is_reported(schedule):
    start = timezone.now() - timedelta(seconds=1000)
    TemplateSchedule.objects.filter(pk=schedule.pk).update(checked_until=start)
    for after in (60, 125, 190):  # on time, or a little late: each counts for its due time
        ScheduledRun.objects.create(schedule=schedule, slot=start + timedelta(seconds=after), state=RunState.LAUNCHED)
    assert scheduling.report_missed(start + timedelta(seconds=1000)) == 3  # due at 250, 310, 370; 430 is not yet
    slots = ScheduledRun.objects.filter(state=RunState.NEVER_STARTED).values_list("slot", flat=True)
    assert sorted(slots) == [start + timedelta(seconds=due) for due in (250, 310, 370)]


def test_a_new_timing_or_enabling_again_owes_nothing_from_before(schedule):
    made = schedule.checked_until
    assert made is not None
    schedule.parameters = {"target": "other"}
    schedule.save()
    assert TemplateSchedule.objects.get(pk=schedule.pk).checked_until == made
    schedule.enabled = False
    schedule.save()
    schedule.enabled = True
    schedule.save()
    assert TemplateSchedule.objects.get(pk=schedule.pk).checked_until > made


def test_a_run_still_awaiting_approval_past_its_time_to_live_is_withdrawn_and_reported(
        schedule, template, relays, reports, django_capture_on_commit_callbacks):
    from commands import approvals

    template.requires_approval = True
    template.save()
    run = scheduling.fire(schedule.pk, timezone.now())
    held = approvals.of(run.launch.batch)
    assert held.state == "pending" and not run.launch.batch.commands.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert scheduling.sweep(run.start_by + timedelta(seconds=1)) == 1
    run.refresh_from_db()
    held.refresh_from_db()
    assert run.state == RunState.NEVER_STARTED and "still awaiting approval" in run.reason
    assert held.state == "withdrawn", "an approval given later must not start it hours late"
    assert reports == [(run.pk, schedule.pk, ["web-0", "web-1"])]
