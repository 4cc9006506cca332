"""Admin pages for template schedules and their runs: timing in words, next run, the last run's state, enable and
disable; runs that never started stand out in red, and the schedule list warns of recent ones.

django-celery-beat's own pages (periodic tasks, intervals, crontabs, solar and clocked schedules) are taken off
the admin: every periodic task is either a sweep, set in settings and rewritten at each beat start, or a
template schedule's, rewritten whenever the schedule is saved. Edited there, a change would be lost or run
as nobody, and a periodic task can send any Celery task with any arguments.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import available_timezones

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django_celery_beat.models import (ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask,
                                       SolarSchedule)

from runbooks import access, timing
from runbooks.models import RunState, ScheduledRun, TemplateSchedule

NONE = "–"
RECENT_RUNS = 10

for _model in (PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


def state_badge(state: str | None) -> str:
    if not state:
        return NONE
    return format_html('<span class="rh-badge rh-{}">{}</span>', state, RunState(state).label)


def in_zone(moment: datetime | None, zone_name: str) -> str:
    """2026-12-03 02:30:00 CET: a time in the schedule's own time zone."""
    if moment is None:
        return NONE
    local = moment.astimezone(timing.zone(zone_name))
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


class ScheduleForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=[(name, name) for name in sorted(available_timezones())],
                                      initial="UTC", help_text="The cron expression's time zone.")

    class Meta:
        model = TemplateSchedule
        fields = ["template", "name", "enabled", "cron", "interval_seconds", "timezone", "parameters", "selector",
                  "overlap", "time_to_live"]


@admin.register(TemplateSchedule)
class TemplateScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ["name", "template", "when", "timezone", "next_run", "last_run", "enabled"]
    list_filter = ["enabled", "overlap"]
    search_fields = ["name", "template__name"]
    list_select_related = ["template", "periodic_task"]
    actions = ["enable_schedules", "disable_schedules"]
    readonly_fields = ["owner", "next_run", "recent_runs", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["template", "name", "enabled"]}),
        ("When", {"fields": ["cron", "interval_seconds", "timezone", "next_run"]}),
        ("What", {"fields": ["parameters", "selector"]}),
        ("Runs", {"fields": ["overlap", "time_to_live", "owner", "recent_runs", "created_at", "updated_at"],
                  "description": "Saving makes you the owner: every run launches as you, and fails, with the "
                                 "reason, once you may no longer launch the template."}),
    ]

    class Media:
        css = {"all": ["relayhub/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[TemplateSchedule]:
        return access.schedules_for(request.user).select_related("template", "owner", "periodic_task") \
            .with_last_run()

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "template":
            kwargs["queryset"] = access.templates_for(request.user, (access.LAUNCH,))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return any(request.user.has_perm(perm) for perm in access.SCHEDULE_VIEW)

    def has_view_permission(self, request: HttpRequest, obj: TemplateSchedule | None = None) -> bool:
        if obj is None:
            return self.has_module_permission(request)
        return access.schedules_for(request.user).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return access.may_edit_schedule(request.user, "add")

    def has_change_permission(self, request: HttpRequest, obj: TemplateSchedule | None = None) -> bool:
        return access.may_edit_schedule(request.user, "change", obj.template if obj is not None else None)

    def has_delete_permission(self, request: HttpRequest, obj: TemplateSchedule | None = None) -> bool:
        return access.may_edit_schedule(request.user, "delete", obj.template if obj is not None else None)

    def save_model(self, request: HttpRequest, obj: TemplateSchedule, form, change: bool) -> None:
        obj.owner = request.user
        super().save_model(request, obj, form, change)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        since = timezone.now() - timedelta(days=1)
        missed = ScheduledRun.objects.filter(schedule__in=access.schedules_for(request.user),
                                             state=RunState.NEVER_STARTED, updated_at__gte=since).count()
        if missed and request.method == "GET":
            url = reverse("admin:runbooks_scheduledrun_changelist") + "?" + urlencode(
                {"state__exact": RunState.NEVER_STARTED})
            messages.error(request, format_html('{} scheduled run(s) never started in the last 24 h: '
                                                '<a href="{}">see them</a>.', missed, url))
        return super().changelist_view(request, extra_context)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[TemplateSchedule], enabled: bool) -> None:
        changed = refused = 0
        for schedule in queryset:
            if not self.has_change_permission(request, schedule):
                refused += 1
            elif schedule.enabled != enabled:
                schedule.enabled = enabled
                schedule.save()  # and its periodic task: beat follows within seconds
                changed += 1
        self.message_user(request, f"{changed} schedule(s) {'enabled' if enabled else 'disabled'}.")
        if refused:
            self.message_user(request, f"{refused} schedule(s) left as they were: you may not launch their "
                                       "template.", messages.WARNING)

    @admin.action(description="Enable the selected schedules", permissions=["change"])
    def enable_schedules(self, request: HttpRequest, queryset: QuerySet[TemplateSchedule]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected schedules", permissions=["change"])
    def disable_schedules(self, request: HttpRequest, queryset: QuerySet[TemplateSchedule]) -> None:
        self._set_enabled(request, queryset, False)

    @admin.display(description="when")
    def when(self, schedule: TemplateSchedule) -> str:
        return schedule.when

    @admin.display(description="next run")
    def next_run(self, schedule: TemplateSchedule) -> str:
        if schedule.pk is None:
            return NONE
        if not schedule.enabled:
            return "disabled"
        return in_zone(schedule.next_run_at(), schedule.timezone)

    @admin.display(description="last run")
    def last_run(self, schedule: TemplateSchedule) -> str:
        return state_badge(getattr(schedule, "last_state", None))

    @admin.display(description="recent runs")
    def recent_runs(self, schedule: TemplateSchedule) -> str:
        if schedule.pk is None:
            return NONE
        runs = list(schedule.runs.select_related("launch").order_by("-slot")[:RECENT_RUNS])
        if not runs:
            return "none yet"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (in_zone(run.slot, schedule.timezone), state_badge(run.state), run.reason or NONE, batch_link(run))
            for run in runs))
        everything = reverse("admin:runbooks_scheduledrun_changelist") + f"?schedule__id__exact={schedule.pk}"
        return format_html('<table class="rh-table"><tr><th>due</th><th>state</th><th>reason</th><th>batch</th>'
                           '</tr>{}</table><p><a href="{}">All runs of this schedule</a></p>', rows, everything)


def batch_link(run: ScheduledRun) -> str:
    if run.launch is None:
        return NONE
    url = reverse("admin:commands_commandbatch_change", args=[run.launch.batch_id])
    return format_html('<a href="{}">batch {}</a>', url, run.launch.batch_id)


@admin.register(ScheduledRun)
class ScheduledRunAdmin(admin.ModelAdmin):
    """What became of each due time; read only: beat alone makes runs."""

    list_display = ["due", "schedule", "template", "state_shown", "reason", "batch"]
    list_filter = ["state", ("schedule", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["schedule__name", "schedule__template__name", "reason"]
    date_hierarchy = "slot"
    fields = ["schedule", "due", "fired_at", "state_shown", "reason", "batch", "created_at", "updated_at"]
    readonly_fields = fields

    class Media:
        css = {"all": ["relayhub/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[ScheduledRun]:
        return ScheduledRun.objects.filter(schedule__in=access.schedules_for(request.user)) \
            .select_related("schedule__template", "launch")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return any(request.user.has_perm(perm) for perm in access.SCHEDULE_VIEW)

    def has_view_permission(self, request: HttpRequest, obj: ScheduledRun | None = None) -> bool:
        if obj is None:
            return self.has_module_permission(request)
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ScheduledRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ScheduledRun | None = None) -> bool:
        return False

    @admin.display(description="due", ordering="slot")
    def due(self, run: ScheduledRun) -> str:
        return in_zone(run.slot, run.schedule.timezone)

    @admin.display(description="template")
    def template(self, run: ScheduledRun) -> str:
        return str(run.schedule.template)

    @admin.display(description="state", ordering="state")
    def state_shown(self, run: ScheduledRun) -> str:
        return state_badge(run.state)

    @admin.display(description="batch")
    def batch(self, run: ScheduledRun) -> str:
        return batch_link(run)
