"""Relay route delivering shared credentials, encrypted for the caller only."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from commands.models import epoch_ms
from relayhub.relay.views import RelayAPIView
from relayhub.relay.schema import RELAY_ID, relay_schema

SharedCredentialItem = inline_serializer("SharedCredentialItem", {
    "name": serializers.CharField(), "credentialType": serializers.CharField(),
    "targetHost": serializers.CharField(required=False),
    "encryptedValue": serializers.CharField(help_text="hex(iv):hex(tag):hex(ciphertext), AES-256-GCM"),
    "updatedAt": serializers.IntegerField(),
}, many=True)


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
