"""Relay routes for identity and health: verify, heartbeat, status."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.throttling import AnonRateThrottle
from rest_framework.request import Request
from rest_framework.response import Response

from assignments.models import Capability, MetricSample, RelayStatus
from commands.choices import CommandStatus
from configpush.models import PushStatus
from credentials import inventory
from relayhub.web.fields import StrictCharField, StrictFloatField
from relayhub.relay.views import RelayAPIView, check_relay_id, ok
from relayhub.relay.routes import relay_route
from relayhub.relay.schema import relay_schema, success
from relayhub.relay.auth import resolve_key

METRIC_KEYS = (
    "cpuPercent", "memoryPercent", "memoryUsedMb", "memoryTotalMb", "diskPercent",
    "diskUsedGb", "diskTotalGb", "loadAvg1m", "loadAvg5m", "loadAvg15m",
)


class VerifyBody(serializers.Serializer):
    apiKey = StrictCharField(trim_whitespace=False)


class VerifyView(RelayAPIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]
    error_envelope = {"valid": False}

    def get_authenticate_header(self, request: Request) -> str:
        # Without it DRF would turn the 401 of a bad key into a 403.
        return "X-API-Key"

    @relay_schema(request=VerifyBody, summary="Check a key and learn the relay's identity", response=inline_serializer(
        "VerifyResponse", {"valid": serializers.BooleanField(), "assignmentId": serializers.CharField(),
                           "machineId": serializers.CharField(), "name": serializers.CharField()}))
    def post(self, request: Request) -> Response:
        relay = resolve_key(self.body(VerifyBody)["apiKey"])
        now = timezone.now()
        relay.api_key.note_use(now)
        relay.status.record_sign_of_life(now)
        return Response(
            {"valid": True, "assignmentId": str(relay.pk), "machineId": relay.machine_id, "name": relay.name}
        )


class HeartbeatBody(serializers.Serializer):
    relayId = serializers.JSONField(required=False)


def heartbeat(relay, data: dict) -> dict:
    check_relay_id(relay, data.get("relayId"))
    # Authentication has recorded the sign of life already (at most every few seconds).
    cancel_ids = relay.claimed_commands.filter(
        status__in=CommandStatus.active(), cancel_requested=True
    ).values_list("pk", flat=True)
    return {"cancelCommandIds": [str(pk) for pk in cancel_ids]}


heartbeat_route = relay_schema(
    request=HeartbeatBody, summary="Sign of life; lists commands whose cancel was requested",
    response=success("HeartbeatResponse", cancelCommandIds=serializers.ListField(child=serializers.CharField())),
)(relay_route(heartbeat, HeartbeatBody))


class MetricsField(serializers.DictField):
    child = StrictFloatField()

    def to_internal_value(self, data: object) -> dict:
        values = super().to_internal_value(data)
        # Unknown metric names are dropped: a newer relay may report more.
        return {key: values[key] for key in METRIC_KEYS if key in values}


class StatusBody(serializers.Serializer):
    relayId = serializers.JSONField(required=False)
    capabilities = serializers.ListField(child=serializers.ChoiceField(Capability.choices), allow_empty=True)
    metrics = MetricsField(required=False, allow_null=True)
    version = StrictCharField(required=False, allow_blank=True, max_length=100)
    hostname = StrictCharField(required=False, allow_blank=True, max_length=255)
    platform = StrictCharField(required=False, allow_blank=True, max_length=100)
    credentials = inventory.InventoryItemSerializer(many=True, required=False, max_length=1000)

    def validate_credentials(self, items: list[dict]) -> list[dict]:
        names = [item["credentialName"] for item in items]
        if len(names) != len(set(names)):
            raise serializers.ValidationError("credentialName must be unique within a report")
        return items


class StatusView(RelayAPIView):
    @relay_schema(request=StatusBody, summary="Full status report; replaces the credential inventory",
                  response=success("StatusResponse", pendingConfigPushes=serializers.IntegerField(),
                                   sharedCredentialsCount=serializers.IntegerField()))
    def post(self, request: Request) -> Response:
        if isinstance(request.data, dict):
            self.check_relay_id(request.data.get("relayId"))
        data = self.body(StatusBody)
        relay, now = self.relay, timezone.now()
        with transaction.atomic():
            fields = {"capabilities": sorted(set(data["capabilities"]))}
            for name in ("version", "hostname", "platform"):
                if name in data:
                    fields[name] = data[name]
            if data.get("metrics"):
                fields["metrics"] = data["metrics"]
                MetricSample.objects.create(relay=relay, metrics=data["metrics"], created_at=now)
            RelayStatus.objects.filter(pk=relay.pk).update(**fields)
            if "credentials" in data:
                inventory.replace(relay, data["credentials"], now)
        return ok(
            pendingConfigPushes=relay.config_pushes.filter(status=PushStatus.PENDING).count(),
            sharedCredentialsCount=relay.shared_credentials.count(),
        )
