"""``POST /relay/verify``: check a key and learn the relay's identity; the one relay route without a key header."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from relayhub.relay import release_key
from relayhub.relay.auth import resolve_key
from relayhub.relay.schema import relay_schema
from relayhub.relay.views import RelayAPIView
from relayhub.web.fields import StrictCharField


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
                           "machineId": serializers.CharField(), "name": serializers.CharField(),
                           "agentReleasePublicKey": serializers.CharField(required=False, help_text=(
                               "Extension: base64 of the Ed25519 public key that signs agent releases, when the hub "
                               "has one; an agent given none pins this one."))}))
    def post(self, request: Request) -> Response:
        relay = resolve_key(self.body(VerifyBody)["apiKey"])
        now = timezone.now()
        relay.api_key.note_use(now)
        relay.status.record_sign_of_life(now)
        answer = {"valid": True, "assignmentId": str(relay.pk), "machineId": relay.machine_id, "name": relay.name}
        if public := release_key.public_key_text():
            answer["agentReleasePublicKey"] = public
        return Response(answer)
