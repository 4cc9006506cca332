"""The base of every relay wire-protocol view (SPEC §3)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assignments.models import RelayAssignment
from relayhub.relay import schema  # noqa: F401  (registers the X-API-Key OpenAPI scheme)
from relayhub.relay.auth import IsRelay, RelayKeyAuthentication
from relayhub.relay.throttling import RelayKeyThrottle
from relayhub.web import json_body


class RelayAPIView(APIView):
    authentication_classes = [RelayKeyAuthentication]
    permission_classes = [IsRelay]
    throttle_classes = [RelayKeyThrottle]
    parser_classes = [json_body.JSONParser, json_body.AnyContentTypeJSONParser]
    error_envelope = {"success": False}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # OPTIONS must answer without a key (SPEC §3).
        if request.method == "OPTIONS":
            self.format_kwarg = self.get_format_suffix(**kwargs)
            neg = self.perform_content_negotiation(request)
            request.accepted_renderer, request.accepted_media_type = neg
            return
        super().initial(request, *args, **kwargs)

    @property
    def relay(self) -> RelayAssignment:
        return self.request.auth

    def body(self, serializer_class: type) -> dict:
        if not isinstance(self.request.data, dict):
            raise exceptions.ValidationError("request body must be a JSON object")
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def check_relay_id(self, relay_id: object) -> None:
        check_relay_id(self.relay, relay_id)


def check_relay_id(relay: RelayAssignment, relay_id: object) -> None:
    """``relayId`` is optional, but when given it must be the caller's own."""
    if relay_id is None:
        return
    if not isinstance(relay_id, str):
        raise exceptions.ValidationError("relayId must be a string")
    if relay_id != str(relay.pk):
        raise exceptions.PermissionDenied("relayId does not belong to this API key")


def ok(**data: Any) -> Response:
    return Response({"success": True, **data})
