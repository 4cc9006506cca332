"""Relay routes for config pushes, with the original's aliases."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from configpush.models import ConfigPush
from relayhub.relay.schema import RELAY_ID, relay_schema, success
from relayhub.relay.views import RelayAPIView, ok
from relayhub.web.fields import StrictBooleanField, StrictCharField, wire_id


class PendingPushesView(RelayAPIView):
    list_key = "configPushes"

    @relay_schema(parameters=[RELAY_ID], summary="Pending config pushes (marked sent)", response=inline_serializer(
        "ConfigPushes", {"configPushes": serializers.ListField(child=serializers.DictField())}))
    def get(self, request: Request) -> Response:
        self.check_relay_id(request.query_params.get("relayId"))
        pushes = ConfigPush.deliver_pending(self.relay)
        return Response({self.list_key: [push.to_wire() for push in pushes]})


class PendingPushesAliasView(PendingPushesView):
    list_key = "pushes"

    @relay_schema(parameters=[RELAY_ID], summary="Alias answering {pushes: [...]}", response=inline_serializer(
        "ConfigPushesAlias", {"pushes": serializers.ListField(child=serializers.DictField())}))
    def get(self, request: Request) -> Response:
        return super().get(request)


class AckBody(serializers.Serializer):
    pushId = StrictCharField()
    success = StrictBooleanField()
    errorMessage = StrictCharField(required=False, allow_blank=True, allow_null=True)


class AckView(RelayAPIView):
    @relay_schema(request=AckBody, summary="Acknowledge a config push", response=success("AckResponse"))
    def post(self, request: Request) -> Response:
        data = self.body(AckBody)
        push_id = data["pushId"]
        pk = wire_id(push_id)
        push = ConfigPush.objects.filter(pk=pk, relay=self.relay).first() if pk is not None else None
        if push is None:
            return Response({"success": False, "error": "config push not found"}, status=404)
        push.acknowledge(data["success"], data.get("errorMessage") or "")
        return ok()
