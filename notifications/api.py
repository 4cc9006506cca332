"""Operator REST API for notifications: channels (the secret write-only), rules, and deliveries (read-only).

Each takes the model permissions, reading included (``view_channel``, ``view_rule``, ``view_delivery``).
"""

from __future__ import annotations

import copy

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from assignments import access
from assignments.models import RelayAssignment
from notifications import tasks
from notifications.forms import check_secret
from notifications.models import Channel, ChannelKind, Delivery, Rule
from relayhub.web.permissions import IsOperator, ModelPermissions


def _model_clean(serializer: serializers.ModelSerializer, model: type, data: dict, prepare=None) -> None:
    instance = copy.copy(serializer.instance) if serializer.instance else model()
    for name, value in data.items():
        setattr(instance, name, value)
    if prepare is not None:
        prepare(instance)
    try:
        instance.clean()
    except ValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from None


class ChannelSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False, max_length=1024,
        style={"input_type": "password"},
        help_text="Webhooks: the HMAC key of X-Relayhub-Signature. Write-only; omit it (or send it empty) to keep the "
                  "current one.")
    kind = serializers.ChoiceField(ChannelKind.choices)
    has_secret = serializers.BooleanField(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Channel
        fields = ["id", "name", "kind", "url", "email_to", "secret", "has_secret", "enabled", "created_by",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]

    def validate(self, data: dict) -> dict:
        secret = data.pop("secret", "")
        problem = check_secret(secret)
        if problem:
            raise serializers.ValidationError({"secret": [problem]})
        self._new_secret = secret

        def seal(instance: Channel) -> None:
            if secret:
                instance.set_secret(secret)

        _model_clean(self, Channel, data, seal)
        return data

    def save(self, **kwargs) -> Channel:
        channel = self.instance or Channel(**self.validated_data, **kwargs)
        for name, value in self.validated_data.items():
            setattr(channel, name, value)
        if self._new_secret:
            channel.set_secret(self._new_secret)
        channel.save()
        self.instance = channel
        return channel


class RuleSerializer(serializers.ModelSerializer):
    relay = serializers.PrimaryKeyRelatedField(queryset=RelayAssignment.objects.all(), required=False, allow_null=True)
    channel = serializers.PrimaryKeyRelatedField(queryset=Channel.objects.all())
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Rule
        fields = ["id", "name", "event", "threshold", "relay", "selector", "template_name", "channel", "enabled",
                  "created_by", "created_at"]
        read_only_fields = ["id", "created_by", "created_at"]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:  # a relay the operator cannot see looks unknown
            fields["relay"].queryset = access.relays_for(request.user)
        return fields

    def validate(self, data: dict) -> dict:
        _model_clean(self, Rule, data)
        return data


class DeliverySerializer(serializers.ModelSerializer):
    event_kind = serializers.CharField(source="event.kind", read_only=True)
    event = serializers.JSONField(source="event.payload", read_only=True)

    class Meta:
        model = Delivery
        fields = ["id", "event_kind", "event", "channel", "rule", "attempt", "status", "http_status", "error",
                  "duration_ms", "created_at"]
        read_only_fields = fields


class ChannelViewSet(viewsets.ModelViewSet):
    serializer_class = ChannelSerializer
    permission_classes = [IsOperator, ModelPermissions]
    queryset = Channel.objects.select_related("created_by")
    search_fields = ["name"]
    filterset_fields = ["kind", "enabled"]

    def perform_create(self, serializer: ChannelSerializer) -> None:
        serializer.save(created_by=self.request.user)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"], permission_classes=[IsOperator])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a test event to this channel (needs change_channel); its deliveries show how it went."""
        if not request.user.has_perm("notifications.change_channel"):
            self.permission_denied(request, "sending a test takes the permission to change channels")
        event = tasks.send_test(self.get_object())
        return Response({"event": str(event.pk)}, status=status.HTTP_202_ACCEPTED)


class RuleViewSet(viewsets.ModelViewSet):
    serializer_class = RuleSerializer
    permission_classes = [IsOperator, ModelPermissions]
    queryset = Rule.objects.select_related("created_by")
    search_fields = ["name", "selector", "template_name"]
    filterset_fields = ["event", "channel", "enabled"]

    def perform_create(self, serializer: RuleSerializer) -> None:
        serializer.save(created_by=self.request.user)


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DeliverySerializer
    permission_classes = [IsOperator, ModelPermissions]
    queryset = Delivery.objects.select_related("event")
    filterset_fields = ["status", "channel", "rule", "event__kind"]
