"""Command pages of the admin: the run form, cancel and rerun, and what the command and batch pages show."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from assignments import access
from commands import (approval_admin, audit_events, batches, display, full_output, output, packages, run_options,
                      visibility)
from commands.choices import CommandStatus
from commands.api import INPUT_FIELDS
from commands.forms import RunCommandForm, initial_from
from commands.models import Command, CommandBatch, IllegalTransition
from relayhub.web.fields import wire_id

RUN_FIELDSETS = [
    (None, {"fields": ["machines", "command"]}),
    ("Script", {"fields": ["script_file", "script", "interpreter"]}),
    ("How it runs", {"fields": ["working_directory", "environment", "run_as"]}),
    ("Target", {"fields": ["target_type", "target_host", "target_port", "target_username"]}),
    ("Limits", {"fields": ["timeout_s", "priority"]}),
    ("Several machines", {"fields": ["max_concurrency", "max_errors"]}),
    ("Delivery", {"fields": ["queue_if_offline"]}),
]


def command_url(command: Command) -> str:
    return reverse("admin:commands_command_change", args=[command.pk])


def run_command(model_admin, request: HttpRequest, *, form_class: type[RunCommandForm] = RunCommandForm,
                fieldsets: list = RUN_FIELDSETS, submit: Callable[..., HttpResponse | None] | None = None,
                initial: dict[str, Any] | None = None, template: str = "admin/commands/command/run.html",
                extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """The run form. Apps above commands (fleet) pass their own form, fieldsets and ``submit``;
    ``submit(model_admin, request, form)`` answers a valid form, or returns None after adding errors to it."""
    if not model_admin.has_add_permission(request):
        raise Http404("no machines to run on")
    initial = dict(initial or {})
    source_id = wire_id(request.GET.get("from"))
    if source_id and (source := visibility.commands_for(request.user).filter(pk=source_id).first()):
        initial.update(initial_from(source))
    elif machine := request.GET.get("machine"):
        initial["machines"] = [machine]
    form = form_class(request.POST or None, request.FILES or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        response = (submit or run_on_machines)(model_admin, request, form)
        if response is not None:
            return response
    return TemplateResponse(request, template, {
        **model_admin.admin_site.each_context(request),
        "opts": Command._meta,
        "title": "Run command",
        "adminform": helpers.AdminForm(form, fieldsets, {}, model_admin=model_admin),
        "form": form,
        "errors": helpers.AdminErrorList(form, []),
        **(extra_context or {}),
    })


def run_on_machines(model_admin, request: HttpRequest, form: RunCommandForm) -> HttpResponse:
    """One machine: a command, and its page. Several: a batch, and its page."""
    machines, fields = form.cleaned_data["machines"], form.command_fields()
    if len(machines) == 1:
        command = Command.objects.create(machine_id=machines[0], created_by=request.user, **fields)
        model_admin.log_addition(request, command, [{"added": {}}])
        return redirect(command_url(command))
    batch = batches.create(machine_ids=machines, created_by=request.user,
                           max_concurrency=form.cleaned_data["max_concurrency"],
                           max_errors=form.cleaned_data["max_errors"],
                           queue_if_offline=form.cleaned_data["queue_if_offline"], **fields)
    model_admin.log_addition(request, batch, [{"added": {}}])
    return redirect(batch_url(batch))


def batch_url(batch: CommandBatch) -> str:
    return reverse("admin:commands_commandbatch_change", args=[batch.pk])


def _visible_command(model_admin, request: HttpRequest, object_id: str) -> Command:
    command = model_admin.get_object(request, unquote(object_id))
    if command is None:
        raise Http404("no such command")
    return command


def cancel(model_admin, request: HttpRequest, command: Command) -> bool:
    if not access.can_run_on(request.user, command.machine_id):
        return False
    try:
        command.cancel()
    except IllegalTransition:
        return False
    model_admin.log_change(request, command, "Cancelled" if command.is_terminal else "Requested cancel")
    return True


def rerun(model_admin, request: HttpRequest, command: Command) -> Command | None:
    if not access.can_run_on(request.user, command.machine_id):
        return None
    try:
        run_options.require_support([command.machine_id],
                                    {name: getattr(command, name) for name in run_options.COPIED_FIELDS})
        packages.require_support([command.machine_id], packages.copied(command))
    except ValidationError as exc:
        model_admin.message_user(request, f"#{command.pk}: " + " ".join(
            message for messages in exc.detail.values() for message in messages), level="error")
        return None
    new = Command.objects.create(created_by=request.user, **{name: getattr(command, name)
                                                             for name in (*INPUT_FIELDS, "secret_environment")},
                                 **packages.copied(command))
    model_admin.log_addition(request, new, f"Rerun of #{command.pk}")
    audit_events.command_rerun(command, new)
    return new


def cancel_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    command = _visible_command(model_admin, request, object_id)
    if not access.can_run_on(request.user, command.machine_id):
        model_admin.message_user(request, f"You may not run commands on {command.machine_id}.", level="error")
    elif not cancel(model_admin, request, command):
        model_admin.message_user(request, f"Command #{command.pk} cannot be cancelled: it is {command.status}.",
                                 level="warning")
    return redirect(command_url(command))


def rerun_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    command = _visible_command(model_admin, request, object_id)
    if not access.can_run_on(request.user, command.machine_id):
        model_admin.message_user(request, f"You may not run commands on {command.machine_id}.", level="error")
        return redirect(command_url(command))
    new = rerun(model_admin, request, command)  # None: it said why
    return redirect(command_url(new or command))


def state_view(model_admin, request: HttpRequest, object_id: str) -> JsonResponse:
    """The command's status and facts as the page shows them, for command.js when the status changes."""
    return JsonResponse(page_state(_visible_command(model_admin, request, object_id)))


def page_state(command: Command) -> dict[str, Any]:
    """What ``state_view`` answers and the command's stream sends as its ``state`` event (``commands.streams``)."""
    return {**display.state(command), "full_output": full_output_links(command)}


def full_output_view(model_admin, request: HttpRequest, object_id: str, stream: str) -> HttpResponse:
    """The stored full copy of a stream, for whoever may see the command; 404 for anyone else."""
    row = full_output.of(_visible_command(model_admin, request, object_id)).get(stream)
    if row is None:
        raise Http404("no full output kept for this stream")
    return full_output.download(row)


def full_output_links(command: Command) -> list[dict[str, str]]:
    """The command page's "Download full stdout (12.5 MiB)" links."""
    return [{"stream": stream, "label": f"Download full {stream} ({full_output.size_text(row.size)})",
             "url": reverse("admin:commands_command_full_output", args=[command.pk, stream])}
            for stream, row in sorted(full_output.of(command).items())]


def command_panel(request: HttpRequest, command: Command) -> dict[str, Any]:
    stdout, stdout_offset = output.since(command, "stdout", 0)
    stderr, stderr_offset = output.since(command, "stderr", 0)
    return {
        "command": command,
        "streams": [("stdout", stdout), ("stderr", stderr)],
        "stdout_offset": stdout_offset, "stderr_offset": stderr_offset,
        "may_run_here": access.can_run_on(request.user, command.machine_id),
        "output_url": reverse("command-output", args=[command.pk]),
        "state_url": reverse("admin:commands_command_state", args=[command.pk]),
        "stream_url": reverse("admin:commands_command_stream", args=[command.pk]),
        "facts": display.facts(command),
        "full_output_links": full_output_links(command),
        **approval_admin.summary(request, command),
    }


COUNT_LABELS = {"failed_runs": "failed runs", "not_delivered": "not delivered", "total": "total"}


def duration_text(duration_ms: int | None) -> str:
    return "–" if duration_ms is None else f"{duration_ms / 1000:.2f} s"


def reason(batch: CommandBatch, target: batches.Target) -> str:
    """Why a target did not run, or how it failed: shown on its row without expanding anything."""
    if target.command is not None:
        return target.command.error
    if target.status == batches.WAITING:
        return "waiting for a free slot (max concurrency)"
    if target.status == CommandStatus.AWAITING_APPROVAL:
        return "waiting for approval"
    if batch.stopped:
        return "not sent: the batch stopped after too many failed runs"
    return ""


def batch_rows(batch: CommandBatch, targets: list[batches.Target]) -> list[dict[str, Any]]:
    return [{
        "target": target,
        "label": target.name or target.machine_id,
        "host": target.host,
        "url": command_url(target.command) if target.command is not None else "",
        "duration": duration_text(target.command.duration_ms if target.command is not None else None),
        "reason": reason(batch, target),
    } for target in targets]


def batch_counts(targets: list[batches.Target]) -> list[dict[str, Any]]:
    """Counts by status, then failed runs, not delivered and the total (batch.js keeps the same order)."""
    return [{"key": key, "label": COUNT_LABELS.get(key, key), "value": value}
            for key, value in batches.counts(targets).items()]


def batch_panel(batch: CommandBatch, request: HttpRequest | None = None) -> dict[str, Any]:
    targets = batches.targets(batch)
    return {
        **(approval_admin.summary(request, batch) if request is not None else {}),
        "batch": batch,
        "targets": targets,
        "rows": batch_rows(batch, targets),
        "counts": batch_counts(targets),
        "overall_status": batches.overall_status(batch, targets),
        "batch_api_url": reverse("batch-detail", args=[batch.pk]),
        "batch_stream_url": reverse("admin:commands_commandbatch_stream", args=[batch.pk]),
        "command_url_pattern": reverse("admin:commands_command_change", args=["0"]).replace("/0/", "/{id}/"),
    }
