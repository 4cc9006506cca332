"""Relay routes of credentials: the status report, which carries the inventory, and shared credentials.

The status route answers what waits for the relay (config pushes, shared credentials),
so it is served here, by the app that stands on both; the relay's own part of the
report is recorded by ``assignments.status_report``.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from assignments import status_report
from configpush.models import PushStatus
from credentials import inventory
from relayhub.relay.schema import RELAY_ID, relay_schema, success
from relayhub.relay.views import RelayAPIView, ok
from relayhub.web.fields import epoch_ms

SharedCredentialItem = inline_serializer("SharedCredentialItem", {
    "name": serializers.CharField(), "credentialType": serializers.CharField(),
    "targetHost": serializers.CharField(required=False),
    "encryptedValue": serializers.CharField(help_text="hex(iv):hex(tag):hex(ciphertext), AES-256-GCM"),
    "updatedAt": serializers.IntegerField(),
}, many=True)


class StatusBody(status_report.RelayReport):
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
            status_report.record(relay, data, now)
            if "credentials" in data:
                inventory.replace(relay, data["credentials"], now)
        return ok(
            pendingConfigPushes=relay.config_pushes.filter(status=PushStatus.PENDING).count(),
            sharedCredentialsCount=relay.shared_credentials.count(),
        )


class SharedCredentialsView(RelayAPIView):
    @relay_schema(parameters=[RELAY_ID], summary="Shared credentials assigned to this relay, encrypted for it",
                  response=inline_serializer("SharedCredentials", {"credentials": SharedCredentialItem}))
    def get(self, request: Request) -> Response:
        self.check_relay_id(request.query_params.get("relayId"))
        secret = self.relay.transport_secret()
        items = []
        for credential in self.relay.shared_credentials.all():
            item = {"name": credential.name, "credentialType": credential.credential_type}
            if credential.target_host:
                item["targetHost"] = credential.target_host
            item["encryptedValue"] = credential.encrypted_for_secret(secret)
            item["updatedAt"] = epoch_ms(credential.updated_at)
            items.append(item)
        return Response({"credentials": items})
