"""Admin views fleet adds to commands' pages: run by selector (with its live preview) and rerun a batch's failures.

They hang off commands' admin classes, which fleet.admin subclasses and registers again: commands may
not import fleet, so the parts that select SSH targets live here, above it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError

from assignments.labels import LabelError
from commands import admin_views
from fleet import batch_api
from fleet.run_form import MACHINES, TARGETS, FleetRunForm, preview
from relayhub.web.fields import wire_id

RUN_FIELDSETS = [
    ("Run on", {"fields": ["mode"]}),
    ("Machines", {"fields": ["machines"], "classes": ["rh-mode-machines"]}),
    ("SSH targets", {"fields": ["selector", "targets"], "classes": ["rh-mode-targets"]}),
    (None, {"fields": ["command"]}),
    ("Script", {"fields": ["script_file", "script", "interpreter"]}),
    ("How it runs", {"fields": ["working_directory", "environment", "run_as"]}),
    ("Target", {"fields": ["target_type", "target_host", "target_port", "target_username"],
                "classes": ["rh-mode-machines"]}),
    ("Limits", {"fields": ["timeout_s", "priority"]}),
    ("Batch", {"fields": ["max_concurrency", "max_errors"]}),
    ("Delivery", {"fields": ["queue_if_offline"]}),
]


def error_text(exc: APIException) -> str:
    """An API error as one sentence for a form or a message."""
    detail = exc.detail
    if isinstance(detail, dict):
        detail = [item for value in detail.values() for item in (value if isinstance(value, list) else [value])]
    if isinstance(detail, list):
        return " ".join(str(item) for item in detail)
    return str(detail)


def target_ids(request: HttpRequest) -> list[int]:
    return [number for value in request.GET.getlist("targets") if (number := wire_id(value)) is not None]


def run_command(model_admin, request: HttpRequest) -> HttpResponse:
    """commands' run form with a targets mode; ``?selector=`` or ``?targets=`` open it in that mode."""
    initial = {"mode": MACHINES}
    if request.GET.get("selector") or request.GET.get("targets"):
        initial = {"mode": TARGETS, "selector": request.GET.get("selector", ""), "targets": target_ids(request)}
    return admin_views.run_command(
        model_admin, request, form_class=FleetRunForm, fieldsets=RUN_FIELDSETS, submit=submit, initial=initial,
        template="admin/fleet/run.html",
        extra_context={"preview_url": reverse("admin:fleet_sshtarget_preview")})


def submit(model_admin, request: HttpRequest, form: FleetRunForm) -> HttpResponse | None:
    if form.cleaned_data["mode"] != TARGETS:
        return admin_views.run_on_machines(model_admin, request, form)
    try:
        with transaction.atomic():
            batch = batch_api.create_batch(request.user, form.batch_data())
    except (ValidationError, PermissionDenied) as exc:
        form.add_error(None, error_text(exc))
        return None
    model_admin.log_addition(request, batch, [{"added": {}}])
    return redirect(admin_views.batch_url(batch))


def preview_view(model_admin, request: HttpRequest) -> JsonResponse:
    """GET ?selector=...&targets=<id>...: the enabled SSH targets the user can see that a batch would go to."""
    if not model_admin.has_view_permission(request):
        return JsonResponse({"error": "you may not see SSH targets"}, status=403)
    try:
        body = preview(request.user, request.GET.get("selector", ""), target_ids(request))
    except LabelError as exc:
        return JsonResponse({"error": str(exc), "field": "selector"}, status=400)
    return JsonResponse(body)


def rerun_failed_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """POST: a new batch to the targets whose run failed or that were never delivered; run permission needed."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    batch = model_admin.get_object(request, unquote(object_id))
    if batch is None:
        raise Http404("no such batch")
    try:
        with transaction.atomic():
            new = batch_api.rerun_failed(request.user, batch)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(error_text(exc)) from None
    except ValidationError as exc:
        messages.warning(request, error_text(exc))
        return redirect(admin_views.batch_url(batch))
    model_admin.log_addition(request, new, f"Rerun of the failed targets of batch #{batch.pk}")
    return redirect(admin_views.batch_url(new))
