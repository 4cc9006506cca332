"""Operator REST API for commands: queue, list with filters, cancel, rerun, output."""

from __future__ import annotations

import json

import django_filters
from django.db import transaction
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import exceptions, mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from assignments import access, reachability
from commands import agent_update, audit_events, full_output, output, packages, run_options, visibility
from commands.approval_api import ApprovalSummarySerializer
from commands.choices import CommandStatus, Stream, TargetType
from commands.models import Command, IllegalTransition
from relayhub.web.fields import INT64_MAX
from relayhub.web.filters import UtcIsoDateTimeFilter

PACKAGE_FIELDS = ["kind", "packages", "package_action", "agent_version"]
INPUT_FIELDS = ["machine_id", "target_type", "target_host", "target_port", "target_username", "command",
                "timeout_ms", "priority", *run_options.FIELDS]


class CommandSerializer(agent_update.AgentUpdateInput, packages.PackagesInput, run_options.RunOptionsInput, serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    queue_if_offline = serializers.BooleanField(
        write_only=True, default=False,
        help_text="Queue even though no relay for the machine is online; it waits, shown as such.")
    waiting_for = serializers.SerializerMethodField(
        help_text="Why a command is not moving: 'approval' (it awaits approval), 'no relay online', or null.")
    full_output = serializers.SerializerMethodField(
        help_text="The whole of each stream that went over the cap, when the hub keeps it: by stream, its size, "
                  "SHA-256 and download URL.")
    package_result = packages.PackageResult(read_only=True, allow_null=True, help_text=(
        "What a package command did, as its relay reported it: the manager, and per package its old and new "
        "version (null: not installed)."))
    approval = ApprovalSummarySerializer(read_only=True, allow_null=True, help_text=(
        "Its approval, if it needed one: who asked, why, and who approved or rejected it, when and why."))

    class Meta:
        model = Command
        fields = ["id", *INPUT_FIELDS, "secret_environment", "script_name", "queue_if_offline", "kind", "packages", "package_action", "package_result", "agent_version", "agent_release", "target_name", "status", "waiting_for", "approval", "attempt", "claimed_by", "claimed_at", "started_at",
                  "completed_at", "deadline_at", "output", "stderr", "exit_code", "error", "duration_ms",
                  "output_truncated", "full_output", "cancel_requested", "batch", "created_by", "created_at",
                  "updated_at"]
        read_only_fields = [name for name in fields if name not in [*INPUT_FIELDS, *PACKAGE_FIELDS, "script_name",
                                                                    "queue_if_offline"]]
        extra_kwargs = {"timeout_ms": {"max_value": 24 * 3600 * 1000},
                        "command": {"required": False, "allow_blank": True, "help_text": "Shell text; or give a script."}}

    def validate(self, data: dict) -> dict:
        return validate_target(run_options.clean(agent_update.clean(packages.clean(data))))

    @extend_schema_field(serializers.DictField(child=inline_serializer("FullOutputFile", {
        "size": serializers.IntegerField(), "sha256": serializers.CharField(), "url": serializers.URLField()})))
    def get_full_output(self, command: Command) -> dict:
        request = self.context.get("request")
        files = {}
        for stream, row in full_output.of(command).items():
            url = reverse("command-full-output", args=[command.pk]) + f"?stream={stream}"
            files[stream] = {"size": row.size, "sha256": row.sha256,
                             "url": request.build_absolute_uri(url) if request else url}
        return files

    def get_waiting_for(self, command: Command) -> str | None:
        if command.status == CommandStatus.AWAITING_APPROVAL:
            return "approval"
        if command.status != CommandStatus.PENDING:
            return None
        states = self.context.setdefault("machine_states", {})
        if command.machine_id not in states:
            states.update(reachability.of_machines([command.machine_id]))
        return None if states[command.machine_id] == reachability.ONLINE else "no relay online"


def validate_target(data: dict) -> dict:
    if data.get("target_type", TargetType.LOCAL) == TargetType.SSH:
        if not data.get("target_host"):
            raise serializers.ValidationError({"target_host": "an SSH command needs a target host"})
    elif data.get("target_host") or data.get("target_port") or data.get("target_username"):
        raise serializers.ValidationError({"target_type": "target host, port and user are for SSH commands only"})
    return data


def require_run_permission(user, machine_id: str) -> None:
    if not access.can_run_on(user, machine_id):
        raise exceptions.PermissionDenied(f"you may not run commands on machine {machine_id!r}")


def require_relay_online(machine_ids: list[str], queue_if_offline: bool) -> None:
    """No silent waits: a 400 for machines no relay is online for, unless the caller asked to queue anyway."""
    if not queue_if_offline and (problems := reachability.refusals(machine_ids)):
        raise serializers.ValidationError({"machine_id": problems})


class CommandFilter(django_filters.FilterSet):
    relay = django_filters.UUIDFilter(field_name="claimed_by")
    creator = django_filters.CharFilter(field_name="created_by__username")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Command
        fields = ["status", "machine_id", "relay", "creator", "batch", "created_after", "created_before"]


class RerunSerializer(serializers.Serializer):
    machine_id = serializers.CharField(required=False, max_length=200)
    queue_if_offline = serializers.BooleanField(required=False, default=False)
    timeout_ms = serializers.IntegerField(required=False, min_value=1, max_value=24 * 3600 * 1000)


class OutputSerializer(serializers.Serializer):
    stdout_offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=INT64_MAX)
    stderr_offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=INT64_MAX)


class PlainTextRenderer(renderers.BaseRenderer):
    """Lets a download answer ``Accept: text/plain``; what it renders itself is only an error."""

    media_type = "text/plain"
    format = "txt"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:  # noqa: ANN001 - DRF's signature
        return json.dumps(data).encode()


class CommandViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                     viewsets.GenericViewSet):
    serializer_class = CommandSerializer
    filterset_class = CommandFilter
    search_fields = ["command", "machine_id"]

    def get_queryset(self):
        return visibility.commands_for(self.request.user).select_related(
            "created_by", "approval__requested_by", "approval__decided_by").prefetch_related("full_outputs")

    def perform_create(self, serializer: CommandSerializer) -> None:
        data = serializer.validated_data
        require_run_permission(self.request.user, data["machine_id"])
        agent_update.require_allowed(self.request.user, [data["machine_id"]], data)
        require_relay_online([data["machine_id"]], data.pop("queue_if_offline"))
        run_options.require_support([data["machine_id"]], data)
        packages.require_support([data["machine_id"]], data)
        serializer.save(created_by=self.request.user)

    @extend_schema(request=None, responses={200: CommandSerializer, 409: inline_serializer(
        "CancelConflict", {"error": serializers.CharField()})})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel: a pending command never runs; a running one is killed by its relay."""
        command = self.get_object()
        require_run_permission(request.user, command.machine_id)
        try:
            command.cancel()
        except IllegalTransition as exc:
            return Response({"error": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(command).data)

    @extend_schema(request=RerunSerializer, responses={201: CommandSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request: Request, pk: str | None = None) -> Response:
        """Queue a new command like this one, optionally on another machine or with another timeout."""
        original = self.get_object()
        overrides = RerunSerializer(data=request.data)
        overrides.is_valid(raise_exception=True)
        queue_if_offline = overrides.validated_data.pop("queue_if_offline")
        fields = {name: getattr(original, name) for name in (*INPUT_FIELDS, "secret_environment")
                  } | packages.copied(original) | agent_update.copied(original) | overrides.validated_data
        require_run_permission(request.user, fields["machine_id"])
        agent_update.require_allowed(request.user, [fields["machine_id"]], fields)
        require_relay_online([fields["machine_id"]], queue_if_offline)
        run_options.require_support([fields["machine_id"]], fields)
        packages.require_support([fields["machine_id"]], fields)
        if fields["machine_id"] == original.machine_id:
            fields["target_name"] = original.target_name
        with transaction.atomic():
            command = Command.objects.create(created_by=request.user, **fields)
            audit_events.command_rerun(original, command)
        return Response(self.get_serializer(command).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("stdout_offset", int), OpenApiParameter("stderr_offset", int)],
                   responses={200: inline_serializer("CommandOutput", {
                       "status": serializers.CharField(), "finished": serializers.BooleanField(),
                       "stdout": serializers.CharField(), "stdout_next_offset": serializers.IntegerField(),
                       "stderr": serializers.CharField(), "stderr_next_offset": serializers.IntegerField(),
                       "output_truncated": serializers.BooleanField()})})
    @action(detail=True, methods=["get"])
    def output(self, request: Request, pk: str | None = None) -> Response:
        """Output from the given offsets; follow a command by asking again from the returned offsets."""
        command = self.get_object()
        offsets = OutputSerializer(data=request.query_params)
        offsets.is_valid(raise_exception=True)
        body = {"status": command.status, "finished": command.is_terminal,
                "output_truncated": command.output_truncated}
        for stream in Stream.values:
            text, next_offset = output.since(command, stream, offsets.validated_data[f"{stream}_offset"])
            body[stream], body[f"{stream}_next_offset"] = text, next_offset
        return Response(body)

    @extend_schema(parameters=[OpenApiParameter("stream", str, enum=["stdout", "stderr"], required=True)],
                   responses={(200, "text/plain"): OpenApiTypes.BINARY, 404: inline_serializer(
                       "NoFullOutput", {"error": serializers.CharField()})})
    @action(detail=True, methods=["get"], url_path="full-output", url_name="full-output",
            renderer_classes=[renderers.JSONRenderer, PlainTextRenderer])
    def full_output(self, request: Request, pk: str | None = None) -> HttpResponse:
        """Download the whole of a stream that went over the cap, as the relay read it (when the hub keeps it)."""
        command = self.get_object()
        stream = request.query_params.get("stream", "")
        if stream not in Stream.values:
            raise serializers.ValidationError({"stream": "stdout or stderr"})
        row = full_output.of(command).get(stream)
        if row is None:
            raise exceptions.NotFound(f"no full {stream} is kept for this command")
        return full_output.download(row)
