"""Admin pages for SSH targets: a list with labels and the last test, selector search, test connection, pinning."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html
from rest_framework.exceptions import PermissionDenied, ValidationError

from assignments import access
from assignments.admin import may_see_relays
from assignments.forms import LabelsField
from assignments.labels import LabelError, format_labels, parse_selector
from commands import batches
from commands.admin import CommandAdmin, CommandBatchAdmin, may_run_somewhere
from commands.execution import wait_until_ended
from commands.models import Command, CommandBatch
from fleet import admin_run, probes, selection
from fleet.admin_run import error_text
from fleet.api import pin_from_last_test
from fleet.models import SSHTarget

ADMIN_PROBE_WAIT_S = 8


class SSHTargetForm(forms.ModelForm):
    labels = LabelsField()

    class Meta:
        model = SSHTarget
        fields = ["name", "host", "port", "username", "relays", "credential_name", "host_keys", "labels", "enabled"]
        widgets = {"host_keys": forms.Textarea(attrs={"rows": 3, "placeholder": "ssh-ed25519 AAAA..."})}


def may_configure(user, target: SSHTarget) -> bool:
    return access.configures_all(user, target.relays.values_list("pk", flat=True))


@admin.register(SSHTarget)
class SSHTargetAdmin(admin.ModelAdmin):
    form = SSHTargetForm
    list_display = ["name", "address", "username", "labels_shown", "relays_shown", "enabled", "last_test"]
    list_filter = ["enabled"]
    search_fields = ["name", "host"]
    change_list_template = "admin/fleet/sshtarget/change_list.html"
    change_form_template = "admin/fleet/sshtarget/change_form.html"
    filter_horizontal = ["relays"]

    class Media:
        css = {"all": ["relayhub/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[SSHTarget]:
        rows = selection.targets_for(request.user).select_related("last_probe").prefetch_related("relays")
        wanted = getattr(request, "rh_selector", None)
        if wanted is not None:
            rows = rows.filter(pk__in=[target.pk for target in wanted.filter(rows)])
        return rows

    def changelist_view(self, request: HttpRequest, extra_context=None):
        text = request.GET.get("selector", "").strip()
        error = ""
        if "selector" in request.GET:
            request.GET = request.GET.copy()
            del request.GET["selector"]
        if text:
            try:
                request.rh_selector = parse_selector(text)
            except LabelError as exc:
                error = str(exc)
        context = {"selector": text, "selector_error": error, **(extra_context or {})}
        return super().changelist_view(request, context)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "relays":
            kwargs["queryset"] = access.relays_for(request.user, access.CONFIGURE)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_see_relays(request.user)

    def has_view_permission(self, request: HttpRequest, obj: SSHTarget | None = None) -> bool:
        if obj is None:
            return may_see_relays(request.user)
        return selection.targets_for(request.user).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return access.configures_any(request.user)

    def has_change_permission(self, request: HttpRequest, obj: SSHTarget | None = None) -> bool:
        if obj is None:
            return access.configures_any(request.user)
        return may_configure(request.user, obj)

    def has_delete_permission(self, request: HttpRequest, obj: SSHTarget | None = None) -> bool:
        return self.has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: SSHTarget, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("preview/", view(lambda r: admin_run.preview_view(self, r)), name="fleet_sshtarget_preview"),
            path("<path:object_id>/test/", view(self.test_view), name="fleet_sshtarget_test"),
            path("<path:object_id>/pin/", view(self.pin_view), name="fleet_sshtarget_pin"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        target = self.get_object(request, unquote(object_id))
        if target is not None:
            extra_context = {"probe": probes.report(target.last_probe),
                             "may_pin": may_configure(request.user, target), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)

    def _target_or_404(self, request: HttpRequest, object_id: str) -> SSHTarget:
        target = self.get_object(request, unquote(object_id))
        if target is None:
            raise Http404("no such SSH target")
        return target

    def _back(self, target: SSHTarget) -> HttpResponse:
        return redirect(reverse("admin:fleet_sshtarget_change", args=[target.pk]))

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        target = self._target_or_404(request, object_id)
        try:
            with transaction.atomic():
                command = probes.start(target, request.user)
        except (PermissionDenied, ValidationError) as exc:
            messages.error(request, error_text(exc))
            return self._back(target)
        found = probes.report(wait_until_ended(command.pk, ADMIN_PROBE_WAIT_S))
        if found.state == "pending":
            messages.warning(request, "The test is queued; its result shows here once the relay answers.")
        else:
            level = messages.SUCCESS if found.state == "ok" else messages.ERROR
            messages.add_message(request, level, f"Test connection: {found.state}"
                                 + (f": {found.error}" if found.error else ""))
        return self._back(target)

    def pin_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        target = self._target_or_404(request, object_id)
        if not may_configure(request.user, target):
            raise Http404("pinning a host key needs configure_relay on every relay of the target")
        try:
            pin_from_last_test(target, request.POST.get("fingerprint", ""))
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, "Host key pinned; the relays receive it with their SSH targets.")
        return self._back(target)

    @admin.display(description="address")
    def address(self, target: SSHTarget) -> str:
        return target.address

    @admin.display(description="labels")
    def labels_shown(self, target: SSHTarget) -> str:
        return format_labels(target.labels or {}) or "–"

    @admin.display(description="relays")
    def relays_shown(self, target: SSHTarget) -> str:
        return ", ".join(relay.name for relay in target.relays.all()) or "–"

    @admin.display(description="last test")
    def last_test(self, target: SSHTarget) -> str:
        found = probes.report(target.last_probe)
        if found is None:
            return "never"
        detail = found.error or (f"{found.rtt_ms} ms" if found.rtt_ms is not None else "")
        return format_html('<span class="rh-badge rh-{}">{}</span> {}', found.state, found.state, detail)


class FleetCommandAdmin(CommandAdmin):
    """commands' admin, whose run form also selects SSH targets (commands may not import fleet)."""

    def get_urls(self):
        run = path("run/", self.admin_site.admin_view(lambda r: admin_run.run_command(self, r)),
                   name="commands_command_run")
        return [run, *(url for url in super().get_urls() if getattr(url, "name", None) != "commands_command_run")]


class FleetCommandBatchAdmin(CommandBatchAdmin):
    """commands' batch page, with "Rerun failed targets" (fleet.batch_api.rerun_failed)."""

    def get_urls(self):
        view = self.admin_site.admin_view(lambda r, object_id: admin_run.rerun_failed_view(self, r, object_id))
        return [path("<path:object_id>/rerun-failed/", view, name="commands_commandbatch_rerun_failed"),
                *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        batch = self.get_object(request, unquote(object_id))
        if batch is not None and may_run_somewhere(request.user):
            extra_context = {"rerun_failed_url": reverse("admin:commands_commandbatch_rerun_failed",
                                                         args=[batch.pk]),
                             "has_failed_targets": bool(batches.failed_destinations(batch)),
                             **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)


for _model, _model_admin in ((Command, FleetCommandAdmin), (CommandBatch, FleetCommandBatchAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, _model_admin)
