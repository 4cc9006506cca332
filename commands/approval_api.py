"""Operator REST API for approvals (four eyes): list what waits, see exactly what would run, approve or reject.

``GET /api/v1/approvals/`` lists, pending ones first, the approvals of commands and batches the user may see or
approve, and their own requests; ``POST .../{id}/approve/`` and ``.../{id}/reject/`` decide one (``reason``,
required to reject). Deciding one's own request is a 403; without ``approve_command`` on every relay involved
(or the approval's own approver permission) a 403; deciding it twice, or after it expired, a 409.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from commands import approvals
from commands.approval_model import Approval
from commands.choices import ApprovalState

MAX_REASON = 2000


class ApprovalSummarySerializer(serializers.ModelSerializer):
    """How a command or batch stands with its approval: shown on the command and the batch."""

    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Approval
        fields = ["id", "state", "reasons", "requested_by", "requested_at", "expires_at", "decided_by", "decided_at",
                  "reason"]
        read_only_fields = fields


class TargetPlanSerializer(serializers.Serializer):
    machine_id = serializers.CharField()
    name = serializers.CharField(help_text="the SSH target's name, or empty")
    host = serializers.CharField(help_text="the SSH host, or empty for a local command")


class PlanSerializer(serializers.Serializer):
    """Exactly what will run once approved."""

    kind = serializers.ChoiceField(["command", "batch"])
    command = serializers.CharField()
    script = serializers.CharField()
    interpreter = serializers.CharField()
    working_directory = serializers.CharField()
    run_as = serializers.CharField()
    environment = serializers.ListField(child=serializers.CharField(), help_text=(
        "NAME=value lines; a secret one reads NAME=******** (credential NAME): its value is never shown"))
    target_type = serializers.CharField()
    timeout = serializers.CharField()
    priority = serializers.IntegerField()
    target_count = serializers.IntegerField()
    targets = TargetPlanSerializer(many=True)
    status = serializers.CharField(help_text="the command's or the batch's status now")


class ApprovalSerializer(ApprovalSummarySerializer):
    kind = serializers.CharField(read_only=True)
    command = serializers.PrimaryKeyRelatedField(read_only=True)
    batch = serializers.PrimaryKeyRelatedField(read_only=True)
    approver = serializers.SerializerMethodField(help_text="the object whose approver_permission also allows deciding")
    may_decide = serializers.SerializerMethodField(help_text="whether you may approve or reject it now")
    plan = serializers.SerializerMethodField()

    class Meta(ApprovalSummarySerializer.Meta):
        fields = ["id", "state", "kind", "command", "batch", "reasons", "requested_by", "requested_at", "expires_at",
                  "decided_by", "decided_at", "reason", "approver", "approver_permission", "may_decide", "plan"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_approver(self, approval: Approval) -> str | None:
        target = approval.approver_object if approval.approver_type_id else None
        return None if target is None else f"{target._meta.label} {target.pk}: {target}"

    def get_may_decide(self, approval: Approval) -> bool:
        return approval.state == ApprovalState.PENDING and not approvals.may_decide(approval, self.context["request"].user)

    @extend_schema_field(PlanSerializer)
    def get_plan(self, approval: Approval) -> dict:
        return PlanSerializer(approvals.describe(approval)).data


class DecisionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_REASON,
                                   help_text="why; required to reject")


class ApprovalFilter(django_filters.FilterSet):
    class Meta:
        model = Approval
        fields = ["state"]


CONFLICT = inline_serializer("ApprovalConflict", {"error": serializers.CharField()})


class ApprovalViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ApprovalSerializer
    filterset_class = ApprovalFilter
    queryset = Approval.objects.none()  # for the schema; get_queryset decides

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Approval.objects.none()
        return approvals.visible_to(self.request.user)

    def _decide(self, request: Request, decide, *, reason_required: bool) -> Response:
        approval = self.get_object()
        body = DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reason = body.validated_data["reason"]
        if reason_required and not reason.strip():
            raise exceptions.ValidationError({"reason": ["say why it is rejected"]})
        try:
            decided = decide(approval, request.user, reason)
        except approvals.Refused as exc:
            raise exceptions.PermissionDenied(str(exc)) from None
        except approvals.Conflict as exc:
            return Response({"error": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(decided).data)

    @extend_schema(request=DecisionSerializer, responses={200: ApprovalSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve: the command is queued (the batch starts dispatching). Not your own request."""
        return self._decide(request, approvals.approve, reason_required=False)

    @extend_schema(request=DecisionSerializer, responses={200: ApprovalSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Reject, with a reason: the command (each target of the batch) is cancelled and never runs."""
        return self._decide(request, approvals.reject, reason_required=True)
