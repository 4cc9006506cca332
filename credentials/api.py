"""Operator REST API for shared credentials: the value is write-only."""

from __future__ import annotations

from django.db import transaction
from rest_framework import exceptions, permissions, serializers, viewsets

from assignments import access
from assignments.models import RelayAssignment
from credentials import assignment
from credentials.models import SSH_TYPES, CredentialType, SharedCredential
from credentials.pushes import queue_credential_pushes
from relayhub.web.permissions import IsOperator


class SharedCredentialSerializer(serializers.ModelSerializer):
    value = serializers.CharField(write_only=True, required=False, trim_whitespace=False,
                                  style={"input_type": "password"}, max_length=64 * 1024)
    credential_type = serializers.ChoiceField(CredentialType.choices)
    assigned_relays = serializers.PrimaryKeyRelatedField(many=True, required=False,
                                                         queryset=RelayAssignment.objects.all())
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SharedCredential
        fields = ["id", "name", "credential_type", "target_host", "value", "assigned_relays", "key_id",
                  "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "key_id", "created_by", "created_at", "updated_at"]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            # Only relays the operator may see can be assigned (others look unknown).
            fields["assigned_relays"].child_relation.queryset = access.relays_for(request.user)
        return fields

    def to_representation(self, instance: SharedCredential) -> dict:
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None:  # assignments to relays the reader cannot see are not shown
            data["assigned_relays"] = [str(relay.pk) for relay in
                                       assignment.visible(request.user, instance.assigned_relays.all())]
        return data

    def validate(self, data: dict) -> dict:
        if self.instance is None and not data.get("value"):
            raise serializers.ValidationError({"value": "a new credential needs a value"})
        credential_type = data.get("credential_type", getattr(self.instance, "credential_type", ""))
        if credential_type in SSH_TYPES and not data.get("target_host", getattr(self.instance, "target_host", "")):
            raise serializers.ValidationError({"target_host": "an SSH credential needs the host it is bound to"})
        # What the relays holding it receive changes: it needs configure_relay there, and is pushed again.
        self.content_changed = bool(data.get("value")) or any(
            name in data and data[name] != getattr(self.instance, name, None) for name in assignment.PUSHED_FIELDS)
        request = self.context.get("request")
        if request is not None:
            current = self.instance.assigned_relays.all() if self.instance else []
            try:
                merged = assignment.merge(request.user, current, data.get("assigned_relays"), self.content_changed)
            except assignment.AssignmentRefused as exc:
                raise exceptions.PermissionDenied(str(exc)) from None
            if "assigned_relays" in data:
                data["assigned_relays"] = merged
        return data

    def save(self, **kwargs) -> SharedCredential:
        value = self.validated_data.pop("value", None)
        relays = self.validated_data.pop("assigned_relays", None)
        previous_name = self.instance.name if self.instance else ""
        with transaction.atomic():
            credential = self.instance or SharedCredential(**self.validated_data, **kwargs)
            for name, field_value in self.validated_data.items():
                setattr(credential, name, field_value)
            if value:
                credential.set_value(value)
            credential.save()
            if relays is not None:
                credential.assigned_relays.set(relays)
            if self.content_changed or relays is not None:
                queue_credential_pushes(credential, created_by=kwargs.get("created_by"), replaces=previous_name)
        self.instance = credential
        return credential


class SharedCredentialViewSet(viewsets.ModelViewSet):
    serializer_class = SharedCredentialSerializer
    permission_classes = [IsOperator, permissions.DjangoModelPermissions]
    queryset = SharedCredential.objects.none()  # for DjangoModelPermissions; get_queryset decides
    search_fields = ["name", "target_host"]

    def get_queryset(self):
        # Shared credentials are hub-wide secrets: managing them takes the model permission.
        user = self.request.user
        if user.has_perm("credentials.view_sharedcredential"):
            return SharedCredential.objects.prefetch_related("assigned_relays").select_related("created_by")
        return SharedCredential.objects.none()

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)
