"""Relay routes for the command queue (SPEC §3)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from commands import results
from commands.models import Command
from relayhub.fields import StrictCharField
from relayhub.relay_api import RelayAPIView, ok
from relayhub.relay_schema import RelayError, WireCommand, relay_schema, success


def failure(status: int, error: str) -> Response:
    return Response({"success": False, "error": error}, status=status)


class PendingCommandsView(RelayAPIView):
    @relay_schema(summary="Pending commands for this relay's machine, best first, at most 10",
                  response=inline_serializer("PendingCommands", {"commands": WireCommand(many=True)}))
    def get(self, request: Request) -> Response:
        limit = settings.RELAYHUB["PENDING_LIST_LIMIT"]
        pending = Command.objects.pending_for(self.relay.machine_id)[:limit]
        return Response({"commands": [command.to_wire() for command in pending]})


class ClaimBody(serializers.Serializer):
    commandId = StrictCharField()


class ClaimView(RelayAPIView):
    @relay_schema(request=ClaimBody, summary="Claim one pending command", response=success(
        "ClaimResponse", command=WireCommand()))
    def post(self, request: Request) -> Response:
        command = results.find_command(self.relay, self.body(ClaimBody)["commandId"])
        if command is None:
            return failure(404, "command not found")
        if not command.claim(self.relay):
            return failure(400, "command is not pending")
        return ok(command={**command.to_wire(created_at=False), "attempt": command.attempt})


class ResultView(RelayAPIView):
    @relay_schema(request=results.ResultBody, summary="Report a command's result (idempotent)",
                  response=success("ResultResponse"), extra_errors={409: RelayError})
    def post(self, request: Request) -> Response:
        outcome = results.submit(self.relay, self.body(results.ResultBody))
        if outcome.http_status != 200:
            return failure(outcome.http_status, outcome.error)
        return ok()
