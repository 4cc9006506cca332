"""Operator REST API for SSH targets: list by selector, change (configurers only), test connection, pin a key.

Seeing a target needs ``view_relay`` on one of its relays; creating, changing or
deleting it needs ``configure_relay`` on every relay it names, before and after,
because it changes what those relays connect to. Testing it needs ``run_command``.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from assignments import access
from assignments.api import SELECTOR_PARAMETER, SelectorFilterMixin
from assignments.labels import LabelError, clean_labels
from assignments.models import RelayAssignment
from commands.execution import wait_until_ended
from fleet import credential_check, probes, selection
from fleet.models import SSHTarget, parse_host_keys


class SSHTargetSerializer(serializers.ModelSerializer):
    relays = serializers.PrimaryKeyRelatedField(many=True, queryset=RelayAssignment.objects.none())
    labels = serializers.JSONField(required=False, help_text="an object of key: value strings")
    last_test = serializers.SerializerMethodField()
    credential_problems = serializers.SerializerMethodField(
        help_text="why the relays could not log in with credential_name: not held, or bound to another host")

    class Meta:
        model = SSHTarget
        fields = ["id", "name", "host", "port", "username", "relays", "credential_name", "host_keys", "labels",
                  "enabled", "credential_problems", "last_test", "created_at", "updated_at"]
        read_only_fields = ["id", "credential_problems", "last_test", "created_at", "updated_at"]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            fields["relays"].child_relation.queryset = access.relays_for(request.user)
        return fields

    def validate_labels(self, labels: object) -> dict:
        try:
            return clean_labels(labels)
        except LabelError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_relays(self, relays: list) -> list:
        if not relays:
            raise serializers.ValidationError("a target needs at least one relay that reaches it")
        return relays

    def get_credential_problems(self, target: SSHTarget) -> list[str]:
        return credential_check.problems(target)

    def get_last_test(self, target: SSHTarget) -> dict | None:
        found = probes.report(target.last_probe)
        return found.as_json() if found else None


class ProbeSerializer(serializers.Serializer):
    wait_ms = serializers.IntegerField(required=False, default=10_000, min_value=0, max_value=30_000)


class PinSerializer(serializers.Serializer):
    fingerprint = serializers.CharField(max_length=200, help_text=(
        "The fingerprint the last test showed, to confirm that this is the key being pinned."))


def require_configure(user, relay_ids) -> None:
    if not access.configures_all(user, relay_ids):
        raise exceptions.PermissionDenied("changing an SSH target needs configure_relay on every relay it names")


@extend_schema_view(list=extend_schema(parameters=[SELECTOR_PARAMETER]))
class SSHTargetViewSet(SelectorFilterMixin, viewsets.ModelViewSet):
    serializer_class = SSHTargetSerializer
    filterset_fields = ["enabled", "relays"]
    search_fields = ["name", "host"]

    def get_queryset(self):
        rows = selection.targets_for(self.request.user).select_related("last_probe").prefetch_related("relays")
        return rows.order_by("name")

    def perform_create(self, serializer: SSHTargetSerializer) -> None:
        require_configure(self.request.user, [relay.pk for relay in serializer.validated_data["relays"]])
        serializer.save(created_by=self.request.user)

    def perform_update(self, serializer: SSHTargetSerializer) -> None:
        before = list(serializer.instance.relays.values_list("pk", flat=True))
        after = [relay.pk for relay in serializer.validated_data.get("relays", [])]
        require_configure(self.request.user, before + after)
        serializer.save()

    def perform_destroy(self, target: SSHTarget) -> None:
        require_configure(self.request.user, target.relays.values_list("pk", flat=True))
        target.delete()

    @extend_schema(request=ProbeSerializer, responses={200: dict, 202: dict})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Test connection: reachability, host key, login and round trip, through one of the target's relays."""
        target = self.get_object()
        body = ProbeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            command = probes.start(target, request.user)
        command = wait_until_ended(command.pk, body.validated_data["wait_ms"] / 1000)
        found = probes.report(command)
        return Response(found.as_json(), status=status.HTTP_202_ACCEPTED if found.state == "pending" else 200)

    @extend_schema(request=PinSerializer, responses={200: SSHTargetSerializer})
    @action(detail=True, methods=["post"], url_path="pin-host-key")
    def pin_host_key(self, request: Request, pk: str | None = None) -> Response:
        """Pin the host key the last test found, after checking its fingerprint is the one shown."""
        target = self.get_object()
        require_configure(request.user, target.relays.values_list("pk", flat=True))
        body = PinSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pinned = pin_from_last_test(target, body.validated_data["fingerprint"])
        return Response(self.get_serializer(pinned).data)


def pin_from_last_test(target: SSHTarget, fingerprint: str) -> SSHTarget:
    found = probes.report(target.last_probe)
    if found is None or not found.host_key:
        raise serializers.ValidationError({"fingerprint": ["test the connection first: no host key has been seen"]})
    if found.fingerprint != fingerprint.strip():
        raise serializers.ValidationError({"fingerprint": [
            f"the last test saw {found.fingerprint}, not {fingerprint.strip()}; test again and compare"]})
    keys = parse_host_keys(target.host_keys)
    if found.host_key not in keys:
        target.host_keys = "\n".join([*keys, found.host_key])
        target.save(update_fields=["host_keys", "updated_at"])
    return target
