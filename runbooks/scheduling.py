"""What happens when beat sends a schedule's run, and the sweep that catches runs that never started.

Only beat enqueues: ``fire`` runs in a worker for each message beat sends, and decides under a
lock on the schedule, so a message sent twice, redelivered, or resent by a restarted beat runs
once (one ``ScheduledRun`` per slot). A run is launched as the schedule's owner, whose
``launch_template`` is checked again each time; an error becomes a failed run with its reason.

The overlap rule: ``skip`` records a skipped run while the previous one is still going; ``queue``
records at most one queued run, which the sweep starts once the previous run has ended.

Every run must start within the schedule's time to live, counted from its due time: a run beat
sent too late, still queued, or whose targets no relay claimed by then is marked never started,
its waiting targets are withdrawn, a WARNING is logged and ``scheduled_run_never_started`` sent.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import APIException

from audit import trail
from audit.models import Source
from commands import approvals, batches
from commands.choices import ApprovalState, CommandStatus
from commands.models import CommandBatch
from fleet.admin_run import error_text
from runbooks.launch import launch
from runbooks import timing
from runbooks.models import Overlap, RunState, ScheduledRun, TemplateSchedule
from runbooks.signals import scheduled_run_never_started

log = logging.getLogger(__name__)
# With either overlap rule at most one run is going at a time; a few more are looked at, for an edited rule.
OVERLAP_LOOKBACK = 3
# Due times beat never sent: at most so many recorded per schedule and sweep, out of so many looked at.
MAX_MISSED, MAX_DUES_EXAMINED = 20, 1000
NEVER_CLAIMED = (CommandStatus.PENDING, CommandStatus.UNDELIVERED, CommandStatus.TIMEOUT)
MAX_NAMED_TARGETS = 20


def _locked(schedule_id: int) -> TemplateSchedule | None:
    return (TemplateSchedule.objects.select_for_update(of=("self",)).select_related("template", "owner")
            .filter(pk=schedule_id).first())


def fire(schedule_id: int, fired_at: datetime | None = None) -> ScheduledRun | None:
    """The run for the slot beat sent at ``fired_at`` (now, if not said); None if that slot has one already."""
    now = timezone.now()
    fired = fired_at or now
    with transaction.atomic():
        schedule = _locked(schedule_id)
        if schedule is None or not schedule.enabled:
            return None
        slot = schedule.slot_for(fired)
        if slot is None or schedule.runs.filter(slot=slot).exists():
            return None
        run = ScheduledRun(schedule=schedule, slot=slot, fired_at=fired_at,
                           start_by=slot + timedelta(seconds=schedule.time_to_live))
        going = _going(schedule)
        queued = schedule.runs.filter(state=RunState.QUEUED).order_by("slot").first()
        if now > run.start_by:
            run.state, run.reason = RunState.NEVER_STARTED, (
                f"due at {_at(slot)}, sent by beat at {_at(fired)}, taken by a worker at {_at(now)}: past its time to "
                f"live of {schedule.time_to_live} s, so it was not launched")
            run.start_by = None
        elif queued is not None or going is not None:
            ahead = f"the run due at {_at((going or queued).slot)}"
            if schedule.overlap == Overlap.QUEUE and queued is None:
                run.state, run.reason = RunState.QUEUED, f"waiting for {ahead} to end"
            else:
                run.state, run.start_by = RunState.SKIPPED_OVERLAP, None
                run.reason = f"{ahead} is still going" if queued is None else f"{ahead} is queued already"
        else:
            run.state = RunState.LAUNCHED
        try:
            with transaction.atomic():
                run.save()
        except IntegrityError:
            return None  # the same slot, recorded meanwhile
        if run.state == RunState.LAUNCHED:
            _launch(run, schedule)
        if run.state == RunState.NEVER_STARTED:
            _report(run, [])
    return run


def _at(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _going(schedule: TemplateSchedule) -> ScheduledRun | None:
    """The schedule's latest launched run whose batch has not ended, if any."""
    recent = schedule.runs.filter(launch__isnull=False).select_related("launch__batch").order_by("-slot")
    for run in recent[:OVERLAP_LOOKBACK]:
        batch = run.launch.batch
        if batches.overall_status(batch, batches.targets(batch)) == "running":
            return run
    return None


def _launch(run: ScheduledRun, schedule: TemplateSchedule) -> None:
    """Launch the template as the owner; a refusal or a bad value fails the run with the reason."""
    owner = schedule.owner
    try:
        if owner is None:
            raise ValidationError("the schedule has no owner any more: edit it to take it over")
        with transaction.atomic(), trail.origin(Source.SCHEDULE, f"schedule {schedule.pk} as {owner}"):
            made = launch(schedule.template, owner, schedule.parameters, narrowing=schedule.selector,
                          queue_if_offline=True, created_by=owner)
    except APIException as exc:
        run.state, run.reason, run.start_by = RunState.FAILED, f"not launched: {error_text(exc)}", None
    except ValidationError as exc:
        run.state, run.reason, run.start_by = RunState.FAILED, f"not launched: {' '.join(exc.messages)}", None
    else:
        run.state, run.launch = RunState.LAUNCHED, made
    if run.state == RunState.FAILED:
        log.warning("scheduled run not launched: %s (schedule %d): %s", run, schedule.pk, run.reason)
    run.save(update_fields=["state", "reason", "launch", "start_by", "updated_at"])


def sweep(now: datetime | None = None) -> int:
    """Mark runs past their time to live that never started, record due times beat never sent, then start
    queued runs whose turn has come."""
    now = now or timezone.now()
    limit = settings.RELAYHUB["SWEEP_BATCH"]
    changed = report_missed(now)
    overdue = ScheduledRun.objects.filter(start_by__lte=now, state__in=(RunState.QUEUED, RunState.LAUNCHED))
    for run_id in overdue.order_by("start_by").values_list("pk", flat=True)[:limit]:
        changed += check_started(run_id, now)
    waiting = ScheduledRun.objects.filter(state=RunState.QUEUED).order_by("slot")
    for schedule_id in dict.fromkeys(waiting.values_list("schedule_id", flat=True)[:limit]):
        changed += start_queued(schedule_id, now)
    return changed


def check_started(run_id: int, now: datetime | None = None) -> bool:
    """Past its time to live: a run still queued, or with targets no relay claimed, never started. True if so."""
    now = now or timezone.now()
    with transaction.atomic():
        run = (ScheduledRun.objects.select_for_update(of=("self",)).select_related("schedule", "launch")
               .filter(pk=run_id, start_by__lte=now, state__in=(RunState.QUEUED, RunState.LAUNCHED)).first())
        if run is None:
            return False
        ttl = run.schedule.time_to_live
        names: list[str] = []
        if run.state == RunState.QUEUED:
            run.reason = f"still queued behind the previous run when its time to live of {ttl} s ran out"
        elif run.launch is not None and _awaits_approval(run.launch.batch):
            # Nothing of it was sent yet: it waits for a second person. Past its time it is withdrawn, not left
            # to start hours late, and reported like any run that never started.
            batches.cancel(run.launch.batch_id)
            names = list(dict.fromkeys(d.get("name") or d["machine_id"] for d in run.launch.batch.destinations))
            run.reason = f"still awaiting approval when its time to live of {ttl} s ran out; withdrawn"
        elif run.launch is not None:
            names = _withdraw_unclaimed(run.launch.batch_id)
            if names:
                shown = ", ".join(names[:MAX_NAMED_TARGETS]) + (
                    f" and {len(names) - MAX_NAMED_TARGETS} more" if len(names) > MAX_NAMED_TARGETS else "")
                run.reason = f"no relay claimed {len(names)} target(s) within {ttl} s of its due time: {shown}"
        run.start_by = None
        if run.state == RunState.QUEUED or names:
            run.state = RunState.NEVER_STARTED
            run.save(update_fields=["state", "reason", "start_by", "updated_at"])
            _report(run, names)
            return True
        run.save(update_fields=["start_by", "updated_at"])
        return False


def _awaits_approval(batch: CommandBatch) -> bool:
    held = approvals.of(batch)
    return held is not None and held.state == ApprovalState.PENDING


def _withdraw_unclaimed(batch_id: int) -> list[str]:
    """The targets of the batch that no relay claimed, their pending copies withdrawn; if none had started, the
    batch is stopped too, so that no waiting target is sent after them."""
    batch = CommandBatch.objects.select_for_update().get(pk=batch_id)
    copies = list(batch.commands.filter(claimed_at__isnull=True, status__in=NEVER_CLAIMED).order_by("batch_index"))
    if copies and not batch.commands.filter(claimed_at__isnull=False).exists() and not batch.stopped:
        batch.stopped = True
        batch.save(update_fields=["stopped"])
    names = []
    for command in copies:
        if command.status != CommandStatus.PENDING or command.withdraw():
            names.append(command.target_name or command.machine_id)
    return names


def _report(run: ScheduledRun, targets: list[str]) -> None:
    log.warning("scheduled run never started: %s (schedule %d): %s", run, run.schedule_id, run.reason)
    transaction.on_commit(lambda: scheduled_run_never_started.send(
        sender=ScheduledRun, run=run, schedule=run.schedule, targets=targets))


def start_queued(schedule_id: int, now: datetime | None = None) -> bool:
    """Launch the schedule's queued run once no run of it is going (and it is still within its time to live)."""
    now = now or timezone.now()
    with transaction.atomic():
        schedule = _locked(schedule_id)
        if schedule is None:
            return False
        run = schedule.runs.filter(state=RunState.QUEUED).order_by("slot").first()
        if run is None or _going(schedule) is not None or (run.start_by is not None and run.start_by <= now):
            return False
        if not schedule.enabled:
            run.state, run.reason, run.start_by = RunState.SKIPPED_OVERLAP, "disabled while it waited", None
            run.save(update_fields=["state", "reason", "start_by", "updated_at"])
            return True
        run.reason = ""
        _launch(run, schedule)
        return True


def report_missed(now: datetime | None = None) -> int:
    """Record as never started each due time past its time to live for which beat sent nothing (it was down)."""
    now = now or timezone.now()
    schedules = TemplateSchedule.objects.filter(enabled=True).order_by(F("checked_until").asc(nulls_first=True))
    return sum(_report_missed(pk, now) for pk in schedules.values_list("pk", flat=True)[
        : settings.RELAYHUB["SWEEP_BATCH"]])


def _report_missed(schedule_id: int, now: datetime) -> int:
    with transaction.atomic():
        schedule = _locked(schedule_id)
        if schedule is None or not schedule.enabled:
            return 0
        ttl = timedelta(seconds=schedule.time_to_live)
        start, horizon = schedule.checked_until or schedule.created_at, now - ttl
        if start >= horizon:
            return 0
        finder = _missed_cron if schedule.cron else _missed_interval
        missed, until = finder(schedule, start, horizon, ttl)
        made = []
        for due in missed:
            run = ScheduledRun(schedule=schedule, slot=due, state=RunState.NEVER_STARTED, reason=(
                f"beat did not send it within its time to live of {schedule.time_to_live} s: was beat running?"))
            try:
                with transaction.atomic():
                    run.save()
            except IntegrityError:
                continue
            made.append(run)
            _report(run, [])
        TemplateSchedule.objects.filter(pk=schedule.pk).update(checked_until=until)
        return len(made)


def _missed_cron(schedule: TemplateSchedule, start: datetime, horizon: datetime,
                 ttl: timedelta) -> tuple[list[datetime], datetime]:
    """Cron times in (start, horizon] without a run, and up to when they were looked at."""
    cron, zone = timing.parse_cron(schedule.cron), timing.zone(schedule.timezone)
    recorded = set(schedule.runs.filter(slot__gt=start, slot__lte=horizon).values_list("slot", flat=True))
    missed: list[datetime] = []
    due = start
    for _ in range(MAX_DUES_EXAMINED):
        following = timing.cron_next(cron, zone, due)
        if following is None or following > horizon:
            return missed, horizon
        due = following
        if due not in recorded:
            missed.append(due)
            if len(missed) >= MAX_MISSED:
                break
    return missed, due


def _missed_interval(schedule: TemplateSchedule, start: datetime, horizon: datetime,
                     ttl: timedelta) -> tuple[list[datetime], datetime]:
    """Each interval after a run (or after ``start``) that passed its time to live with no run in it."""
    every = timedelta(seconds=schedule.interval_seconds)
    slots = list(schedule.runs.filter(slot__gt=start).order_by("slot").values_list("slot", flat=True)[
        :MAX_DUES_EXAMINED])
    missed: list[datetime] = []
    previous = start
    for slot in [*slots, None]:
        while (due := previous + every) <= horizon:
            if slot is not None and slot <= due + ttl:
                break  # this run was that due time's, on time or late within its time to live
            missed.append(due)
            previous = due
            if len(missed) >= MAX_MISSED:
                return missed, previous
        else:
            return missed, previous
        previous = slot
    return missed, previous
