"""Operator REST API for relays: list and detail, with computed liveness; PATCH ``requires_approval`` only,
by holders of ``configure_relay`` on the relay (being able to run on it never allows changing what it allows)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, viewsets

from assignments import access
from assignments.labels import LabelError, Selector, parse_selector
from assignments.models import RelayAssignment


def selector_or_400(text: str, field: str = "selector", *, allow_empty: bool = False) -> Selector:
    """A selector, or a 400 that says what is wrong with it (empty is wrong where it would pick everything)."""
    try:
        selector = parse_selector(text)
    except LabelError as exc:
        raise serializers.ValidationError({field: [str(exc)]}) from None
    if selector.is_empty and not allow_empty:
        raise serializers.ValidationError({field: ["the selector is empty: it would pick everything"]})
    return selector


WRITABLE = ("requires_approval", "agent_version_pin")


class RelaySerializer(serializers.ModelSerializer):
    online = serializers.BooleanField(source="is_online", read_only=True)
    capabilities = serializers.JSONField(source="status.capabilities", read_only=True)
    metrics = serializers.JSONField(source="status.metrics", read_only=True)
    version = serializers.CharField(source="status.version", read_only=True)
    hostname = serializers.CharField(source="status.hostname", read_only=True)
    platform = serializers.CharField(source="status.platform", read_only=True)
    last_heartbeat_at = serializers.DateTimeField(source="status.last_heartbeat_at", read_only=True)
    last_connection_event = serializers.CharField(source="status.last_connection_event", read_only=True)
    last_fetch_at = serializers.DateTimeField(source="status.last_fetch_at", read_only=True, help_text=(
        "When it last asked for commands (list, next or claim), to within RELAYHUB_FETCH_WRITE_S."))
    not_fetching = serializers.BooleanField(source="status.is_not_fetching", read_only=True, help_text=(
        "Online, but it has not fetched commands while some waited for its machine."))

    class Meta:
        model = RelayAssignment
        fields = ["id", "name", "machine_id", "enabled", "labels", "requires_approval", "agent_version_pin", "online", "last_seen_at",
                  "last_heartbeat_at", "last_connection_event", "last_fetch_at", "not_fetching", "capabilities", "metrics", "version", "hostname",
                  "platform", "created_at", "updated_at"]
        read_only_fields = [name for name in fields if name not in WRITABLE]

    def validate(self, data: dict) -> dict:
        others = sorted(set(self.initial_data) - set(WRITABLE))
        if others:
            raise serializers.ValidationError({name[:100]: [f"only {', '.join(WRITABLE)} can be changed here"]
                                               for name in others[:20]})
        return data



SELECTOR_PARAMETER = OpenApiParameter("selector", str, description="a label selector, e.g. env=prod,role in (web,api)")


class SelectorFilterMixin:
    """``?selector=`` on a list: the rows whose labels it matches, paginated like any list (400 if malformed)."""

    def filter_queryset(self, queryset):
        rows = super().filter_queryset(queryset)
        text = self.request.query_params.get("selector")
        if self.action != "list" or text is None:
            return rows
        return selector_or_400(text, allow_empty=True).filter(rows)


@extend_schema_view(list=extend_schema(parameters=[SELECTOR_PARAMETER]),
                    partial_update=extend_schema(description=(
                        "Change whether the relay requires approval for its machine's commands, or its agent_version_pin; needs "
                        "configure_relay on the relay. Other fields are read-only (400).")))
class RelayViewSet(SelectorFilterMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = RelaySerializer
    http_method_names = ["get", "patch", "head", "options"]
    filterset_fields = ["machine_id", "enabled"]
    search_fields = ["name", "machine_id"]

    def get_queryset(self):
        return access.relays_for(self.request.user).select_related("status").order_by("machine_id", "name")

    def perform_update(self, serializer: RelaySerializer) -> None:
        if not access.configures(self.request.user, serializer.instance):
            raise exceptions.PermissionDenied("changing whether a relay requires approval, or its agent version pin, needs configure_relay on it")
        serializer.save()
