"""Operator REST API for template schedules and their runs.

A schedule is seen with the model's view or change permission on a template the user may see, and added,
changed or deleted with the model permission and ``launch_template`` on its template (``runbooks.access``).
Whoever saves it owns it: its runs launch as them. Runs are made by beat alone; the API only lists them.
"""

from __future__ import annotations

import copy

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from relayhub.web.permissions import IsOperator
from runbooks import access
from runbooks.models import RunState, ScheduledRun, TemplateSchedule


class LastRunSerializer(serializers.Serializer):
    slot = serializers.DateTimeField()
    state = serializers.ChoiceField(choices=RunState.choices)


class ScheduleSerializer(serializers.ModelSerializer):
    template = serializers.PrimaryKeyRelatedField(queryset=TemplateSchedule.objects.none())
    template_name = serializers.CharField(source="template.name", read_only=True)
    timezone = serializers.CharField(max_length=64, default="UTC", help_text="An IANA name, such as Europe/Berlin.")
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, help_text=(
        "Runs launch as this user: whoever saved the schedule last."))
    when = serializers.CharField(read_only=True, help_text='The timing in words: "At 02:30", "every 5 min".')
    next_run_at = serializers.SerializerMethodField()
    last_run = serializers.SerializerMethodField()

    class Meta:
        model = TemplateSchedule
        fields = ["id", "name", "template", "template_name", "enabled", "cron", "interval_seconds", "timezone",
                  "parameters", "selector", "overlap", "time_to_live", "owner", "when", "next_run_at", "last_run",
                  "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def get_fields(self) -> dict:
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and not getattr(self, "swagger_fake_view", False):
            fields["template"].queryset = access.templates_for(request.user)
        return fields

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_run_at(self, schedule: TemplateSchedule) -> str | None:
        moment = schedule.next_run_at()
        return serializers.DateTimeField().to_representation(moment) if moment else None

    @extend_schema_field(LastRunSerializer(allow_null=True))
    def get_last_run(self, schedule: TemplateSchedule) -> dict | None:
        if getattr(schedule, "last_slot", None) is None:
            return None
        return LastRunSerializer({"slot": schedule.last_slot, "state": schedule.last_state}).data

    def validate(self, data: dict) -> dict:
        instance = copy.copy(self.instance) if self.instance else TemplateSchedule()
        for name, value in data.items():
            setattr(instance, name, value)
        try:
            instance.clean()
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return data


class ScheduledRunSerializer(serializers.ModelSerializer):
    launch = serializers.PrimaryKeyRelatedField(read_only=True)
    batch = serializers.IntegerField(source="launch.batch_id", read_only=True, allow_null=True, default=None)

    class Meta:
        model = ScheduledRun
        fields = ["id", "slot", "fired_at", "state", "reason", "launch", "batch", "created_at", "updated_at"]
        read_only_fields = fields


class SchedulePermissions(permissions.BasePermission):
    """The model permission for the method first (403 before the body is read); launch_template comes after."""

    verbs = {"POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete"}

    def has_permission(self, request: Request, view) -> bool:
        verb = self.verbs.get(request.method)
        return verb is None or request.user.has_perm(f"runbooks.{verb}_templateschedule")


class TemplateScheduleViewSet(viewsets.ModelViewSet):
    serializer_class = ScheduleSerializer
    permission_classes = [IsOperator, SchedulePermissions]
    queryset = TemplateSchedule.objects.none()
    search_fields = ["name", "template__name"]
    filterset_fields = ["template", "enabled"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return TemplateSchedule.objects.none()
        return access.schedules_for(self.request.user).select_related("template", "owner", "periodic_task") \
            .with_last_run()

    def _require(self, action_name: str, *templates) -> None:
        for template in templates:
            if not access.may_edit_schedule(self.request.user, action_name, template):
                raise exceptions.PermissionDenied(
                    f"you may not {action_name} schedules of the template {template.name!r}: that takes the "
                    f"{action_name} schedule permission and launch_template on the template")

    def perform_create(self, serializer: ScheduleSerializer) -> None:
        self._require("add", serializer.validated_data["template"])
        serializer.save(owner=self.request.user)

    def perform_update(self, serializer: ScheduleSerializer) -> None:
        self._require("change", serializer.instance.template,
                      serializer.validated_data.get("template", serializer.instance.template))
        serializer.save(owner=self.request.user)

    def perform_destroy(self, instance: TemplateSchedule) -> None:
        self._require("delete", instance.template)
        instance.delete()

    @extend_schema(responses=ScheduledRunSerializer(many=True), parameters=[OpenApiParameter(
        "state", OpenApiTypes.STR, enum=RunState.values, description="Only runs in this state.")])
    @action(detail=True, methods=["get"], filter_backends=[])
    def runs(self, request: Request, pk: str | None = None) -> Response:
        """The schedule's runs, latest due time first: launched, queued, skipped, never started or failed."""
        schedule = self.get_object()
        rows = schedule.runs.select_related("launch").order_by("-slot")
        state = request.query_params.get("state")
        if state:
            if state not in RunState.values:
                raise serializers.ValidationError({"state": [f"must be one of {', '.join(RunState.values)}"]})
            rows = rows.filter(state=state)
        return self.get_paginated_response(ScheduledRunSerializer(self.paginate_queryset(rows), many=True).data)

