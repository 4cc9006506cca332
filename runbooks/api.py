"""Operator REST API for job templates: list, edit (model permissions), and launch (launch_template)."""

from __future__ import annotations

import copy

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from fleet.batch_api import BatchSerializer
from relayhub.web.permissions import IsOperator
from runbooks import access
from runbooks.launch import launch
from runbooks.models import JobTemplate, Launch

CREDENTIAL_AUTHOR_PERMISSION = "credentials.change_sharedcredential"


class JobTemplateSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = JobTemplate
        fields = ["id", "name", "description", "command", "script", "interpreter", "parameters", "target_kind",
                  "selector", "working_directory", "run_as", "environment", "timeout_ms", "priority",
                  "max_concurrency", "max_errors", "requires_approval", "created_by", "created_at", "updated_at"]
        read_only_fields = ["created_by", "created_at", "updated_at"]

    def validate(self, data: dict) -> dict:
        instance = copy.copy(self.instance) if self.instance else JobTemplate()
        for name, value in data.items():
            setattr(instance, name, value)
        try:
            instance.clean()
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        user = self.context["request"].user
        secret = any(item.get("type") == "secret" for item in instance.parameters)
        if secret and not user.has_perm(CREDENTIAL_AUTHOR_PERMISSION):
            raise serializers.ValidationError({"parameters": [
                "a secret parameter hands a shared credential to the command: it takes the permission to change "
                "shared credentials"]})
        return data


class LaunchRequestSerializer(serializers.Serializer):
    parameters = serializers.DictField(required=False, default=dict, help_text=(
        "Parameter name to value; checked against the template's types. Secrets are not given: they come "
        "from their credential."))
    selector = serializers.CharField(required=False, default="", allow_blank=True, max_length=4096,
                                     help_text="Narrows the template's selector; it can never widen it.")
    queue_if_offline = serializers.BooleanField(required=False, default=False)


class LaunchSerializer(serializers.ModelSerializer):
    template = serializers.SlugRelatedField(slug_field="name", read_only=True)
    launched_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    batch = BatchSerializer(read_only=True)

    class Meta:
        model = Launch
        fields = ["id", "template", "parameters", "selector", "launched_by", "created_at", "batch"]
        read_only_fields = fields


class TemplatePermissions(permissions.DjangoModelPermissions):
    """Editing takes the model permissions; launching takes launch_template on the template, checked by launch()."""

    def has_permission(self, request: Request, view) -> bool:
        return view.action == "launch" or super().has_permission(request, view)


class JobTemplateViewSet(viewsets.ModelViewSet):
    serializer_class = JobTemplateSerializer
    permission_classes = [IsOperator, TemplatePermissions]
    queryset = JobTemplate.objects.none()  # for DjangoModelPermissions; get_queryset decides
    search_fields = ["name", "description"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return JobTemplate.objects.none()
        return access.templates_for(self.request.user).select_related("created_by")

    def perform_create(self, serializer: JobTemplateSerializer) -> None:
        serializer.save(created_by=self.request.user)

    @extend_schema(request=LaunchRequestSerializer, responses={201: LaunchSerializer})
    @action(detail=True, methods=["post"])
    def launch(self, request: Request, pk: str | None = None) -> Response:
        """Run the template: its parameters become RELAYHUB_PARAM_* variables, and it runs as a batch."""
        template = self.get_object()
        body = LaunchRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not access.may_launch(request.user, template):
            raise exceptions.PermissionDenied(f"you may not launch the template {template.name!r}")
        made = launch(template, request.user, body.validated_data["parameters"],
                      narrowing=body.validated_data["selector"],
                      queue_if_offline=body.validated_data["queue_if_offline"])
        return Response(LaunchSerializer(made, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)
