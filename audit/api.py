"""Operator REST API for the audit trail: read-only, filtered, and exported as JSON lines.

Needs ``audit.view_auditentry`` (superusers have it); anyone else gets 403.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request

from audit import export
from audit.filters import AuditFilter
from audit.models import AuditEntry
from relayhub.web.permissions import IsOperator, ModelPermissions


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "action", "actor", "actor_id", "source", "address", "object_type", "object_id",
                  "object_repr", "detail"]
        read_only_fields = fields


class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """Who did what, from where and when: queue, cancel, rerun, launch, approve, keys, credentials (never the
    value), config pushes, permission changes, sign-ins. Newest first."""

    permission_classes = [IsOperator, ModelPermissions]
    serializer_class = AuditEntrySerializer
    queryset = AuditEntry.objects.all()
    filterset_class = AuditFilter
    search_fields = ["object_repr", "actor_name"]

    @extend_schema(responses={(200, "application/x-ndjson"): OpenApiResponse(
        OpenApiTypes.STR, description="One JSON object per line, oldest first, with the list's filters.")})
    @action(detail=False, methods=["get"], url_path="export")
    def export(self, request: Request):
        """The entries the filters pick, as JSON lines (a download; ``?format=`` is not needed)."""
        return export.response(self.filter_queryset(self.get_queryset()))
