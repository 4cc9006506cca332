"""Relay pages of the admin: the panels of the relay page, enable/disable, and key issuance.

The relay page shows what the apps above hold for the relay through panels they
register (``relay_page_panel``); this app knows none of them.

A new key and transport secret go out in the body of the POST response that
made them and nowhere else: no redirect, message, session, log line or log
entry ever carries them, and ``admin_view`` marks the response ``no-store``.

Each form that issues a key carries a one-time token, so that reloading the
page that showed the key (the browser sends the POST again) does not issue
another key or add another relay; it leads back with a message instead.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from assignments import access, metrics_chart
from assignments.forms import IssueRelayForm
from assignments.models import IssuedKey, MetricSample, RelayAssignment

METRICS = [("cpuPercent", "CPU", "rh-cpu"), ("memoryPercent", "memory", "rh-mem"), ("diskPercent", "disk", "rh-disk")]
KEY_ACTIONS = {
    "revoke-key": ("Revoke the key", "The relay is refused on its next request, until a new key is issued."),
    "issue-key": ("Issue a new key", "The current key is revoked at once; the relay needs the new key and "
                                     "transport secret to connect again."),
}


FORM_TOKENS = "relayhub_key_form_tokens"  # session: tokens of key forms shown and not yet submitted
KEPT_TOKENS = 20


def form_token(request: HttpRequest) -> str:
    token = secrets.token_urlsafe(16)
    request.session[FORM_TOKENS] = [*request.session.get(FORM_TOKENS, [])[-(KEPT_TOKENS - 1):], token]
    return token


def take_form_token(request: HttpRequest) -> bool:
    """True once per token a form was shown with; False for a resent or forged form."""
    tokens = request.session.get(FORM_TOKENS, [])
    token = request.POST.get("once")
    if token not in tokens:
        return False
    tokens.remove(token)
    request.session[FORM_TOKENS] = tokens
    return True


def relay_state(relay: RelayAssignment) -> str:
    if not relay.enabled:
        return "disabled"
    status = getattr(relay, "status", None)
    if status is not None and status.is_not_fetching:
        return "not-fetching"
    return "online" if relay.is_online else "offline"


Panel = Callable[[HttpRequest, RelayAssignment], dict[str, Any]]
# What the apps above show on the relay page (its commands, config pushes, inventory), each
# registered from that app's admin module with ``relay_page_panel``.
PANELS: list[Panel] = []


def relay_page_panel(panel: Panel) -> Panel:
    """Register a function answering entries of the relay page's context for a request and relay."""
    if panel not in PANELS:
        PANELS.append(panel)
    return panel


def relay_panels(request: HttpRequest, relay: RelayAssignment) -> dict[str, Any]:
    samples = list(MetricSample.objects.filter(relay=relay, created_at__gte=timezone.now() - timedelta(hours=24))
                   .order_by("created_at").values_list("created_at", "metrics"))
    panels = {
        "relay": relay,
        "relay_status": getattr(relay, "status", None),
        "state": relay_state(relay),
        "metrics_chart": metrics_chart.percent_chart(metrics_chart.thin(samples, 300), METRICS),
        "may_run_here": access.can_run_on(request.user, relay.machine_id),
        "may_push_config": access.relays_for(request.user, access.CONFIGURE).filter(pk=relay.pk).exists(),
    }
    for panel in PANELS:
        panels.update(panel(request, relay))
    return panels


def _relay_or_404(model_admin, request: HttpRequest, object_id: str) -> RelayAssignment:
    relay = model_admin.get_object(request, unquote(object_id))
    if relay is None:
        raise Http404("no such relay")
    if not model_admin.has_change_permission(request, relay):
        raise PermissionDenied
    return relay


def set_enabled(model_admin, request: HttpRequest, object_id: str, enabled: bool) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    relay = _relay_or_404(model_admin, request, object_id)
    apply_enabled(model_admin, request, relay, enabled)
    model_admin.message_user(request, f"{relay} is {'enabled' if enabled else 'disabled'}.")
    return redirect(reverse("admin:assignments_relayassignment_change", args=[relay.pk]))


def apply_enabled(model_admin, request: HttpRequest, relay: RelayAssignment, enabled: bool) -> bool:
    if relay.enabled == enabled:
        return False
    relay.enabled = enabled
    relay.save(update_fields=["enabled", "updated_at"])
    model_admin.log_change(request, relay, "Enabled" if enabled else "Disabled")
    return True


def set_requires_approval(model_admin, request: HttpRequest, object_id: str, required: bool) -> HttpResponse:
    """POST: whether the relay's commands wait for a second person; configure_relay on it needed."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    relay = model_admin.get_object(request, unquote(object_id))
    if relay is None:
        raise Http404("no such relay")
    if not access.configures(request.user, relay):
        raise PermissionDenied
    if relay.requires_approval != required:
        relay.requires_approval = required
        relay.save(update_fields=["requires_approval", "updated_at"])
        model_admin.log_change(request, relay, "Requires approval" if required else "No longer requires approval")
    model_admin.message_user(request, f"Commands on {relay.machine_id} through {relay} "
                                      f"{'now wait for approval' if required else 'no longer wait for approval'}.")
    return redirect(reverse("admin:assignments_relayassignment_change", args=[relay.pk]))


def key_action(model_admin, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
    relay = _relay_or_404(model_admin, request, object_id)
    title, warning = KEY_ACTIONS[action]
    if request.method != "POST":
        return TemplateResponse(request, "admin/assignments/relayassignment/confirm_key_action.html", {
            **context(model_admin, request, relay, title), "warning": warning, "action": action,
            "once": form_token(request),
        })
    if action == "revoke-key":
        relay.revoke_key()
        model_admin.log_change(request, relay, "Revoked the API key")
        model_admin.message_user(request, f"The key of {relay} is revoked.")
        return redirect(reverse("admin:assignments_relayassignment_change", args=[relay.pk]))
    if not take_form_token(request):
        model_admin.message_user(request, "That form was sent already; its key was shown once and is not shown "
                                          "again. Issue a new key if it was lost.", messages.WARNING)
        return redirect(reverse("admin:assignments_relayassignment_change", args=[relay.pk]))
    issued = relay.reissue_key()
    model_admin.log_change(request, relay, "Issued a new API key")
    return show_key(model_admin, request, issued, "New key issued")


def issue_relay(model_admin, request: HttpRequest) -> HttpResponse:
    form = IssueRelayForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not take_form_token(request):
            model_admin.message_user(request, "That form was sent already; the relay it added is in the list, and "
                                              "its key is not shown again. Issue a new key from its page if it "
                                              "was lost.", messages.WARNING)
            return redirect(reverse("admin:assignments_relayassignment_changelist"))
        issued = RelayAssignment.issue(machine_id=form.cleaned_data["machine_id"], name=form.cleaned_data["name"],
                                       created_by=request.user)
        model_admin.log_addition(request, issued.relay, [{"added": {}}])
        return show_key(model_admin, request, issued, "Relay added")
    return TemplateResponse(request, "admin/assignments/relayassignment/issue.html", {
        **context(model_admin, request, None, "Add relay"), "form": form, "once": form_token(request),
    })


def show_key(model_admin, request: HttpRequest, issued: IssuedKey, title: str) -> HttpResponse:
    return TemplateResponse(request, "admin/assignments/relayassignment/issued_key.html", {
        **context(model_admin, request, issued.relay, title),
        "issued": issued,
        "hub_url": request.build_absolute_uri("/").rstrip("/"),
    })


def context(model_admin, request: HttpRequest, relay: RelayAssignment | None, title: str) -> dict[str, Any]:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": RelayAssignment._meta,
        "title": title,
        "original": relay,
        "relay": relay,
    }
