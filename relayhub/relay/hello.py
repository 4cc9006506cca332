"""``GET /relay/hello``: who answers here, asked before a relay sends its key; needs no key.

The bundled agent refuses to send its key to a server that does not answer this as a relayhub
(say another program on the port the hub was meant to have). It tells nothing about relays.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from relayhub.relay.views import RelayAPIView

SERVICE = "relayhub"


class HelloView(RelayAPIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    @extend_schema(
        tags=["relay"],
        auth=[],
        summary="Identify the hub before sending a key (extension; needs no key)",
        responses={200: inline_serializer("HelloResponse", {"service": serializers.CharField()})},
    )
    def get(self, request: Request) -> Response:
        return Response({"service": SERVICE})
