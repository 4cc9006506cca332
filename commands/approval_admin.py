"""The admin's Approvals: pending ones first; each page shows exactly what would run, with Approve and Reject.

Deciding goes through ``commands.approvals`` (the same rules as the API: never one's own request,
``approve_command`` on every relay involved or the approval's own approver permission, first decision wins).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Case, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from assignments.admin import may_see_relays
from commands import approvals, display
from commands.approval_model import Approval
from commands.choices import ApprovalState


def approval_url(approval: Approval) -> str:
    return reverse("admin:commands_approval_change", args=[approval.pk])


def subject_url(approval: Approval) -> str:
    if approval.command_id is not None:
        return reverse("admin:commands_command_change", args=[approval.command_id])
    return reverse("admin:commands_commandbatch_change", args=[approval.batch_id])


def state_badge(approval: Approval):
    return format_html('<span class="rh-badge rh-approval-{}">{}</span>', approval.state, approval.state)


def summary(request: HttpRequest, subject: Any) -> dict[str, Any]:
    """What the command and batch pages show of their approval (``admin/commands/approval/summary.html``)."""
    approval = approvals.of(subject)
    if approval is None:
        return {}
    return {"approval": approval, "approval_url": approval_url(approval),
            "approval_text": display.approval_text(approval),
            "may_decide_approval": approval.state == ApprovalState.PENDING
            and not approvals.may_decide(approval, request.user)}


@admin.register(Approval)
class ApprovalAdmin(admin.ModelAdmin):
    list_display = ["id", "state_shown", "what", "subject", "targets", "requested_by", "requested", "expires",
                    "decided_by", "decided"]
    list_display_links = ["id", "what"]
    list_filter = ["state"]
    list_select_related = ["command", "batch", "requested_by", "decided_by"]
    ordering = [Case(When(state=ApprovalState.PENDING, then=Value(0)), default=Value(1)).asc(), "-requested_at"]
    search_fields = ["command__command", "batch__command", "requested_by__username"]

    class Media:
        css = {"all": ["relayhub/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Approval]:
        return approvals.visible_to(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_see_relays(request.user) or approvals.visible_to(request.user).exists()

    def has_view_permission(self, request: HttpRequest, obj: Approval | None = None) -> bool:
        if obj is None:
            return self.has_module_permission(request)
        return approvals.visible_to(request.user).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    # Decided only through Approve and Reject; kept as the audit trail.
    def has_change_permission(self, request: HttpRequest, obj: Approval | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Approval | None = None) -> bool:
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/approve/", view(lambda r, object_id: self.decide(r, object_id, approvals.approve)),
                 name="commands_approval_approve"),
            path("<path:object_id>/reject/", view(lambda r, object_id: self.decide(r, object_id, approvals.reject)),
                 name="commands_approval_reject"),
            *super().get_urls(),
        ]

    def _visible(self, request: HttpRequest, object_id: str) -> Approval:
        approval = self.get_object(request, unquote(object_id))
        if approval is None:
            raise Http404("no such approval")
        return approval

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        approval = self._visible(request, object_id)
        why_not = approvals.may_decide(approval, request.user)
        return TemplateResponse(request, "admin/commands/approval/decide.html", {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Approval #{approval.pk}",
            "approval": approval,
            "plan": approvals.describe(approval),
            "subject_url": subject_url(approval),
            "requested_at": display.moment(approval.requested_at),
            "expires_at": display.moment(approval.expires_at),
            "decided_at": display.moment(approval.decided_at),
            "pending": approval.state == ApprovalState.PENDING,
            "may_decide": approval.state == ApprovalState.PENDING and not why_not,
            "why_not": why_not,
        })

    def decide(self, request: HttpRequest, object_id: str, decision) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        approval = self._visible(request, object_id)
        reason = request.POST.get("reason", "")[:2000]
        try:
            decided = decision(approval, request.user, reason)
        except (approvals.Refused, approvals.Conflict, ValueError) as exc:
            text = "Say why it is rejected." if isinstance(exc, ValueError) else str(exc)
            self.message_user(request, text[:1].upper() + text[1:], messages.ERROR)
            return redirect(approval_url(approval))
        self.log_change(request, decided, f"{decided.state.capitalize()}: {reason}" if reason else
                        decided.state.capitalize())
        self.message_user(request, f"{decided.state.capitalize()}: {decided.kind} "
                                   f"#{decided.command_id or decided.batch_id}.", messages.SUCCESS)
        return redirect(subject_url(decided))

    @admin.display(description="state", ordering="state")
    def state_shown(self, approval: Approval):
        return state_badge(approval)

    @admin.display(description="command")
    def what(self, approval: Approval) -> str:
        text = approval.subject.command
        return format_html('<code class="rh-ellipsis" title="{}">{}</code>', text, Truncator(text).chars(120))

    @admin.display(description="of")
    def subject(self, approval: Approval):
        return format_html('<a href="{}">{} #{}</a>', subject_url(approval), approval.kind,
                           approval.command_id or approval.batch_id)

    @admin.display(description="targets")
    def targets(self, approval: Approval) -> int:
        return 1 if approval.command_id is not None else len(approval.batch.destinations)

    @admin.display(description="requested", ordering="requested_at")
    def requested(self, approval: Approval) -> str:
        return display.moment(approval.requested_at)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, approval: Approval) -> str:
        return display.moment(approval.expires_at)

    @admin.display(description="decided", ordering="decided_at")
    def decided(self, approval: Approval) -> str:
        return display.moment(approval.decided_at)
