"""The RPC pair mirroring the original component, with its camelCase names (SPEC §4)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from commands import visibility
from commands.api import require_run_permission, validate_target
from commands.choices import TargetType
from commands.execution import exec_async
from commands.models import Command
from relayhub.web.fields import StrictCharField, StrictIntegerField, wire_id


class RpcExecBody(serializers.Serializer):
    machineId = StrictCharField(max_length=200)
    command = StrictCharField(trim_whitespace=False)
    targetType = serializers.ChoiceField(TargetType.choices)
    targetHost = StrictCharField(required=False, max_length=255)
    targetPort = StrictIntegerField(required=False, min_value=1, max_value=65535)
    targetUsername = StrictCharField(required=False, max_length=100)
    timeoutMs = StrictIntegerField(required=False, min_value=1, max_value=24 * 3600 * 1000)


class RpcExecView(APIView):
    @extend_schema(request=RpcExecBody, responses={200: inline_serializer(
        "RpcExecResponse", {"success": serializers.BooleanField(), "commandId": serializers.CharField(),
                            "status": serializers.CharField(help_text=(
                                "its status once queued: awaiting_approval when a relay of the machine requires approval"))})})
    def post(self, request: Request) -> Response:
        body = RpcExecBody(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        fields = validate_target({
            "target_type": data["targetType"], "target_host": data.get("targetHost", ""),
            "target_port": data.get("targetPort"), "target_username": data.get("targetUsername", ""),
        })
        require_run_permission(request.user, data["machineId"])
        command_id = exec_async(data["machineId"], data["command"], timeout_ms=data.get("timeoutMs", 30_000),
                                created_by=request.user, **fields)
        queued = Command.objects.filter(pk=command_id).values_list("status", flat=True).first()
        return Response({"success": True, "commandId": str(command_id), "status": queued})


class RpcCommandView(APIView):
    @extend_schema(responses={200: inline_serializer("RpcCommandResult", {
        "found": serializers.BooleanField(), "status": serializers.CharField(required=False),
        "output": serializers.CharField(required=False), "stderr": serializers.CharField(required=False),
        "exitCode": serializers.IntegerField(required=False), "error": serializers.CharField(required=False),
        "durationMs": serializers.IntegerField(required=False)})})
    def get(self, request: Request, command_id: str) -> Response:
        commands = visibility.commands_for(request.user)
        pk = wire_id(command_id)
        command = commands.filter(pk=pk).first() if pk is not None else None
        if command is None:
            return Response({"found": False, "error": "command not found"}, status=404)
        body = {"found": True, "status": command.status, "output": command.output, "stderr": command.stderr,
                "exitCode": command.exit_code, "error": command.error, "durationMs": command.duration_ms}
        return Response({key: value for key, value in body.items() if value not in (None, "")} | {"found": True})
