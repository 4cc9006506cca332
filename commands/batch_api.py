"""Operator REST API for batches: one command on many machines."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from commands import batches
from commands.api import require_run_permission, validate_target
from commands.choices import TargetType
from commands.models import MAX_BATCH_TARGETS, CommandBatch


class BatchCreateSerializer(serializers.Serializer):
    machine_ids = serializers.ListField(child=serializers.CharField(max_length=200), min_length=1, max_length=1000)
    command = serializers.CharField()
    target_type = serializers.ChoiceField(TargetType.choices, default=TargetType.LOCAL)
    target_host = serializers.CharField(required=False, default="", allow_blank=True, max_length=255)
    target_port = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=65535)
    target_username = serializers.CharField(required=False, default="", allow_blank=True, max_length=100)
    timeout_ms = serializers.IntegerField(default=30_000, min_value=1, max_value=24 * 3600 * 1000)
    priority = serializers.IntegerField(default=5, min_value=1, max_value=10)
    max_concurrency = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                               max_value=MAX_BATCH_TARGETS)
    max_errors = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=MAX_BATCH_TARGETS)

    def validate(self, data: dict) -> dict:
        return validate_target(data)


class TargetSerializer(serializers.Serializer):
    machine_id = serializers.CharField()
    status = serializers.CharField()
    command_id = serializers.IntegerField(source="command.pk", allow_null=True, default=None)
    exit_code = serializers.IntegerField(source="command.exit_code", allow_null=True, default=None)
    output = serializers.CharField(source="command.output", default="")
    stderr = serializers.CharField(source="command.stderr", default="")
    error = serializers.CharField(source="command.error", default="")


class BatchSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    targets = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CommandBatch
        fields = ["id", "status", "command", "target_type", "target_host", "target_port", "target_username",
                  "timeout_ms", "priority", "max_concurrency", "max_errors", "stopped", "targets", "created_by",
                  "created_at"]
        read_only_fields = fields

    def _targets(self, batch: CommandBatch) -> list[batches.Target]:
        cache = self.context.setdefault("targets", {})
        if batch.pk not in cache:
            cache[batch.pk] = batches.targets(batch)
        return cache[batch.pk]

    def get_status(self, batch: CommandBatch) -> str:
        return batches.overall_status(batch, self._targets(batch))

    def get_targets(self, batch: CommandBatch) -> list[dict]:
        return TargetSerializer(self._targets(batch), many=True).data


class BatchViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                   viewsets.GenericViewSet):
    serializer_class = BatchSerializer

    queryset = CommandBatch.objects.none()  # for the schema; get_queryset decides

    def get_queryset(self):
        batches_ = CommandBatch.objects.select_related("created_by").order_by("-created_at")
        if getattr(self, "swagger_fake_view", False):
            return batches_
        return batches.visible_to(self.request.user, batches_)

    def get_serializer_class(self):
        return BatchCreateSerializer if self.action == "create" else BatchSerializer

    @extend_schema(request=BatchCreateSerializer, responses={201: BatchSerializer})
    def create(self, request: Request) -> Response:
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        for machine_id in data.validated_data["machine_ids"]:
            require_run_permission(request.user, machine_id)
        batch = batches.create(created_by=request.user, **data.validated_data)
        return Response(BatchSerializer(batch, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)
