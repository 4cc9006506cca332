"""Operator REST API for config pushes, validated per push type."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, mixins, serializers, viewsets

from assignments import access
from assignments.models import RelayAssignment
from configpush import payloads
from configpush.models import ConfigPush, PushType


class ConfigPushSerializer(serializers.ModelSerializer):
    relay = serializers.PrimaryKeyRelatedField(queryset=RelayAssignment.objects.all())
    push_type = serializers.ChoiceField(PushType.choices)
    payload = serializers.JSONField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ConfigPush
        fields = ["id", "relay", "push_type", "payload", "status", "tries", "created_by", "created_at", "sent_at",
                  "acked_at", "error_message"]
        read_only_fields = ["id", "status", "tries", "created_by", "created_at", "sent_at", "acked_at",
                            "error_message"]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["relay"].queryset = access.relays_for(request.user)
        return fields

    def validate(self, data: dict) -> dict:
        try:
            data["payload"] = payloads.validate(data["push_type"], data["payload"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"payload": exc.messages}) from None
        return data


class ConfigPushViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                        viewsets.GenericViewSet):
    serializer_class = ConfigPushSerializer
    filterset_fields = ["relay", "push_type", "status"]

    def get_queryset(self):
        return ConfigPush.objects.filter(relay__in=access.relays_for(self.request.user)).select_related(
            "created_by").order_by("-created_at")

    def perform_create(self, serializer: ConfigPushSerializer) -> None:
        if not access.relays_for(self.request.user, access.CONFIGURE).filter(pk=serializer.validated_data["relay"].pk):
            raise exceptions.PermissionDenied("you may not configure this relay")
        serializer.save(created_by=self.request.user)
