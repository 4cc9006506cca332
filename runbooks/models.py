"""Job templates: saved commands or scripts with typed parameters, launched as ordinary batches, and their
schedules (``TemplateSchedule``, one ``ScheduledRun`` per due time)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from assignments.labels import LabelError, parse_selector
from commands import batches
from commands.models import CommandBatch
from commands.run_options import Interpreter
from runbooks import beat_sync, params, timing


class TargetKind(models.TextChoices):
    MACHINES = "machines", "Relays' machines (run locally there)"
    SSH_TARGETS = "ssh_targets", "SSH targets"


class JobTemplate(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    command = models.TextField(blank=True, help_text="One command line; or a script below.")
    script = models.TextField(blank=True, help_text="Run as a file by the interpreter, never pasted into sh -c.")
    interpreter = models.CharField(max_length=10, choices=Interpreter.choices, default=Interpreter.SH)
    parameters = models.JSONField(default=list, blank=True, help_text=(
        'A list of {"name", "type": string|integer|choice|boolean|secret, "label", "help", "required", "default", '
        '"pattern" (string), "min"/"max" (integer), "choices" (choice), "credential" (secret), "env"}. Each reaches '
        "the command as RELAYHUB_PARAM_<NAME>, and as env if given."))
    target_kind = models.CharField(max_length=12, choices=TargetKind.choices, default=TargetKind.MACHINES)
    selector = models.CharField(max_length=4096, help_text=(
        "Where it runs: a label selector over relays or SSH targets. A launch may narrow it, never widen it."))
    working_directory = models.CharField(max_length=4096, blank=True)
    run_as = models.CharField(max_length=32, blank=True)
    environment = models.JSONField(default=dict, blank=True, help_text="Fixed variables, as {NAME: value}.")
    timeout_ms = models.PositiveIntegerField(default=60_000, validators=[MinValueValidator(1),
                                                                         MaxValueValidator(24 * 3600 * 1000)])
    priority = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(10)])
    max_concurrency = models.CharField(max_length=8, blank=True, help_text="A number or a share such as 25%.")
    max_errors = models.CharField(max_length=8, blank=True, help_text="A number or a share such as 10%.")
    requires_approval = models.BooleanField(default=False, help_text=(
        "A launch waits until another user holding approve on this template (or on every relay) approves it."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "job template"
        permissions = [("launch_template", "Can launch this template"),
                       ("approve_template", "Can approve launches of this template")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if bool(self.command.strip()) == bool(self.script):
            errors["command"] = "Give a command or a script, not both."
        try:
            params.check_definitions(self.parameters)
        except ValidationError as exc:
            errors["parameters"] = " ".join(exc.messages)
        try:
            if parse_selector(self.selector).is_empty:
                errors["selector"] = "A template needs a selector saying where it runs."
        except LabelError as exc:
            errors["selector"] = str(exc)
        for name in ("max_concurrency", "max_errors"):
            try:
                batches.check_limit(getattr(self, name) or None, name=name, minimum=1 if name == "max_concurrency"
                                    else 0)
            except batches.LimitError as exc:
                errors[name] = str(exc)
        if errors:
            raise ValidationError(errors)


class Launch(models.Model):
    """One launch of a template: the batch it made, and its parameters as shown (secrets masked)."""

    template = models.ForeignKey(JobTemplate, on_delete=models.PROTECT, related_name="launches")
    batch = models.OneToOneField(CommandBatch, on_delete=models.CASCADE, related_name="launch")
    parameters = models.JSONField(default=dict, blank=True)
    selector = models.CharField(max_length=4096, blank=True, help_text="The launch's narrowing, if any.")
    launched_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.template} #{self.pk}"


class Overlap(models.TextChoices):
    SKIP = "skip", "Skip it while the previous run is still going"
    QUEUE = "queue", "Queue it: it starts once the previous run has ended"


MIN_INTERVAL_S = 2
# Beat sends an interval's runs at least the interval apart, give or take this: a fire nearer to a recorded run
# than the interval less this is that run sent again.
INTERVAL_TOLERANCE = timedelta(milliseconds=500)
# Beat fires a cron slot at or just after its time; a clock a second behind still finds the slot.
CRON_TOLERANCE = timedelta(seconds=1)


# Changing one of these, or enabling the schedule, starts its due times afresh.
TIMING = ("cron", "interval_seconds", "timezone", "enabled")


class TemplateScheduleQuerySet(models.QuerySet):
    def with_last_run(self) -> TemplateScheduleQuerySet:
        latest = ScheduledRun.objects.filter(schedule=models.OuterRef("pk")).order_by("-slot")
        return self.annotate(last_slot=models.Subquery(latest.values("slot")[:1]),
                             last_state=models.Subquery(latest.values("state")[:1]))


class TemplateSchedule(models.Model):
    """A template launched on a cron expression or an interval, as its owner, by Celery beat alone."""

    template = models.ForeignKey(JobTemplate, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=200)
    cron = models.CharField(max_length=200, blank=True, help_text=(
        "Five fields, minute hour day-of-month month day-of-week, in the time zone below (\"30 2 * * 1-5\"). "
        "Or an interval; not both."))
    interval_seconds = models.PositiveIntegerField(null=True, blank=True, validators=[
        MinValueValidator(MIN_INTERVAL_S), MaxValueValidator(366 * 86400)], help_text="Or run every so many seconds.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="An IANA name, such as Europe/Berlin.")
    parameters = models.JSONField(default=dict, blank=True, help_text=(
        "Parameter name to value, checked against the template. Secrets are not given: they come from their "
        "credential."))
    selector = models.CharField(max_length=4096, blank=True, help_text=(
        "Narrows the template's selector; it can never widen it."))
    overlap = models.CharField(max_length=8, choices=Overlap.choices, default=Overlap.SKIP)
    time_to_live = models.PositiveIntegerField(default=3600, validators=[
        MinValueValidator(10), MaxValueValidator(7 * 86400)], help_text=(
        "Seconds after its due time within which a relay must claim each target; a run that misses it is marked "
        "never started, its waiting targets are withdrawn, and it is reported."))
    enabled = models.BooleanField(default=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", editable=False, help_text=(
                                  "Runs launch as this user, whose launch permission is checked at every run."))
    periodic_task = models.OneToOneField("django_celery_beat.PeriodicTask", null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+", editable=False)
    # Every due time up to here has a run, or was recorded as missed (runbooks.scheduling.report_missed).
    # Set to now when the timing is made or changed, and when the schedule is enabled: nothing before is owed.
    checked_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TemplateScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "schedule"
        constraints = [models.UniqueConstraint(fields=["template", "name"], name="runbooks_schedule_name_unique")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if bool(self.cron.strip()) == (self.interval_seconds is not None):
            errors["cron"] = "Give a cron expression or an interval, not both."
        elif self.cron.strip():
            try:
                timing.parse_cron(self.cron)
            except timing.TimingError as exc:
                errors["cron"] = str(exc)
        try:
            timing.zone(self.timezone)
        except timing.TimingError as exc:
            errors["timezone"] = str(exc)
        try:
            parse_selector(self.selector)
        except LabelError as exc:
            errors["selector"] = str(exc)
        if self.template_id is not None:
            try:
                params.render(self.template.parameters, self.parameters)
            except ValidationError as exc:
                errors["parameters"] = " ".join(exc.messages)
        if errors:
            raise ValidationError(errors)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.cron = " ".join(self.cron.split())
        before = type(self).objects.filter(pk=self.pk).values(*TIMING).first() if self.pk else None
        if self.enabled and (before is None or any(before[name] != getattr(self, name) for name in TIMING)):
            self.checked_until = timezone.now()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "checked_until"}
        with transaction.atomic():
            super().save(*args, **kwargs)
            beat_sync.sync(self)

    @property
    def when(self) -> str:
        """The timing in words: "At 02:30, Monday through Friday", "every 5 min"."""
        if self.cron:
            return timing.describe_cron(self.cron)
        return timing.describe_interval(self.interval_seconds or 0)

    def slot_for(self, fired: datetime) -> datetime | None:
        """The due time a run beat sent at ``fired`` is for; None when it is one already run (beat sent it again)."""
        if self.cron:
            return timing.cron_slot(timing.parse_cron(self.cron), timing.zone(self.timezone), fired + CRON_TOLERANCE)
        # Beat sends an interval's runs at least the interval apart: one nearer to a recorded run is that run again.
        near = timedelta(seconds=self.interval_seconds) - INTERVAL_TOLERANCE
        if self.runs.filter(slot__gt=fired - near, slot__lt=fired + near).exists():
            return None
        return fired

    def next_run_at(self, now: datetime | None = None) -> datetime | None:
        """When beat next sends it; for an interval, counted from the last run or from when it was set up."""
        if not self.enabled:
            return None
        now = now or timezone.now()
        if self.cron:
            return timing.cron_next(timing.parse_cron(self.cron), timing.zone(self.timezone), now)
        last = self.last_slot if hasattr(self, "last_slot") else \
            self.runs.order_by("-slot").values_list("slot", flat=True).first()
        task = self.periodic_task
        marks = [last, task and (task.last_run_at or task.date_changed)]
        base = max((mark for mark in marks if mark is not None), default=now)
        return max(base + timedelta(seconds=self.interval_seconds), now)


@receiver(post_delete, sender=TemplateSchedule, dispatch_uid="runbooks.schedule_deleted")
def _schedule_deleted(sender: type, instance: TemplateSchedule, **kwargs: object) -> None:
    beat_sync.remove(instance)


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued behind the previous run"
    LAUNCHED = "launched"
    SKIPPED_OVERLAP = "skipped_overlap", "Skipped: the previous run was still going"
    NEVER_STARTED = "never_started", "Never started"
    FAILED = "failed"


class ScheduledRun(models.Model):
    """One due time of a schedule and what became of it; there is never a second run for the same slot."""

    schedule = models.ForeignKey(TemplateSchedule, on_delete=models.CASCADE, related_name="runs")
    slot = models.DateTimeField(help_text="The due time this run is for.")
    fired_at = models.DateTimeField(null=True, blank=True, help_text="When beat sent it.")
    state = models.CharField(max_length=16, choices=RunState.choices)
    reason = models.TextField(blank=True)
    launch = models.OneToOneField(Launch, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="scheduled_run")
    # Until then a relay may still claim its targets; the sweep checks it after, and clears it.
    start_by = models.DateTimeField(null=True, blank=True, db_index=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-slot"]
        verbose_name = "scheduled run"
        constraints = [models.UniqueConstraint(fields=["schedule", "slot"], name="runbooks_scheduled_run_slot_once")]

    def __str__(self) -> str:
        return f"{self.schedule} at {self.slot:%Y-%m-%d %H:%M:%S}"
