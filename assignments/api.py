"""Operator REST API for relays: list and detail, with computed liveness."""

from __future__ import annotations

from rest_framework import serializers, viewsets

from assignments import access
from assignments.models import RelayAssignment


class RelaySerializer(serializers.ModelSerializer):
    online = serializers.BooleanField(source="is_online", read_only=True)
    capabilities = serializers.JSONField(source="status.capabilities", read_only=True)
    metrics = serializers.JSONField(source="status.metrics", read_only=True)
    version = serializers.CharField(source="status.version", read_only=True)
    hostname = serializers.CharField(source="status.hostname", read_only=True)
    platform = serializers.CharField(source="status.platform", read_only=True)
    last_heartbeat_at = serializers.DateTimeField(source="status.last_heartbeat_at", read_only=True)
    last_connection_event = serializers.CharField(source="status.last_connection_event", read_only=True)

    class Meta:
        model = RelayAssignment
        fields = ["id", "name", "machine_id", "enabled", "online", "last_seen_at", "last_heartbeat_at",
                  "last_connection_event", "capabilities", "metrics", "version", "hostname", "platform",
                  "created_at", "updated_at"]
        read_only_fields = fields


class RelayViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RelaySerializer
    filterset_fields = ["machine_id", "enabled"]
    search_fields = ["name", "machine_id"]

    def get_queryset(self):
        return access.relays_for(self.request.user).select_related("status").order_by("machine_id", "name")
