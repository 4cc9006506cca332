"""The relay list's "Update these relays" action: an agent update to a release, as a batch with limits."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from agentupdates.models import AgentRelease
from assignments import access
from assignments.admin import RelayAssignmentAdmin
from assignments.models import RelayAssignment
from commands import agent_update, batches


@admin.action(description="Update these relays' agent (a batch)")
def update_agents(model_admin: RelayAssignmentAdmin, request: HttpRequest, queryset: QuerySet[RelayAssignment]):
    relays = list(queryset.order_by("name"))
    context = {**model_admin.admin_site.each_context(request), "title": "Update these relays' agent",
               "relays": relays, "releases": AgentRelease.objects.all(), "opts": model_admin.opts,
               "max_concurrency": request.POST.get("max_concurrency", "10%"),
               "max_errors": request.POST.get("max_errors", "0"), "version": request.POST.get("version", "")}
    if "apply" not in request.POST:
        return TemplateResponse(request, "admin/assignments/relayassignment/update_agents.html", context)
    machine_ids = list(dict.fromkeys(relay.machine_id for relay in relays))
    relay_ids = [relay.pk for relay in relays]
    if not request.user.has_perm(access.CONFIGURE) and not access.configures_all(request.user, relay_ids):
        model_admin.message_user(request, "Updating a relay's agent needs configure_relay on each relay.",
                                 level=messages.ERROR)
        return None
    if not all(access.can_run_on(request.user, machine_id) for machine_id in machine_ids):
        model_admin.message_user(request, "You may not run commands on all of these relays.", level=messages.ERROR)
        return None
    release = AgentRelease.objects.filter(version=request.POST.get("version", "")).first()
    if release is None:
        context["error"] = "Pick a release."
        return TemplateResponse(request, "admin/assignments/relayassignment/update_agents.html", context)
    if problems := agent_update.refusals(machine_ids, release.version):
        context["error"] = "; ".join(problems[:10])
        return TemplateResponse(request, "admin/assignments/relayassignment/update_agents.html", context)
    try:
        batch = batches.create(machine_ids=machine_ids, created_by=request.user,
                               max_concurrency=context["max_concurrency"], max_errors=context["max_errors"],
                               command=agent_update.command_text(release.version), agent_release=release.metadata(),
                               timeout_ms=agent_update.DEFAULT_TIMEOUT_MS)
    except batches.LimitError as exc:
        context["error"] = str(exc)
        return TemplateResponse(request, "admin/assignments/relayassignment/update_agents.html", context)
    model_admin.message_user(request, f"Updating {len(machine_ids)} machine(s) to relay-agent {release.version}.")
    return HttpResponseRedirect(reverse("admin:commands_commandbatch_change", args=[batch.pk]))


RelayAssignmentAdmin.actions = [*RelayAssignmentAdmin.actions, update_agents]
RelayAssignmentAdmin.list_filter = [*RelayAssignmentAdmin.list_filter, "status__version"]
