"""Operator REST API for batches: one command on many machines or SSH targets, rolled out SSM-style."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from commands import batches, run_options
from assignments import reachability
from assignments.api import selector_or_400
from commands.api import require_run_permission, validate_target
from commands.approval_api import ApprovalSummarySerializer
from commands.approval_model import Need
from commands.choices import TargetType
from commands.models import MAX_BATCH_TARGETS, CommandBatch
from fleet import selection

MAX_TARGETS = 1000
LIMIT_HELP = "A whole number, or a percentage of the targets such as '10%'."


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 0, "maximum": MAX_BATCH_TARGETS},
                                 {"type": "string", "pattern": "^[0-9]{1,3}%$"}]})
class LimitField(serializers.Field):
    """An integer or a percentage string; resolved against the number of targets when the batch is made."""

    def __init__(self, *, minimum: int, **kwargs) -> None:
        self.minimum = minimum
        super().__init__(**kwargs)

    def to_internal_value(self, data: object) -> int | str | None:
        try:
            return batches.check_limit(data, name=self.field_name, minimum=self.minimum)
        except batches.LimitError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: object) -> object:
        return value


class BatchCreateSerializer(run_options.RunOptionsInput, serializers.Serializer):
    machine_ids = serializers.ListField(child=serializers.CharField(max_length=200), min_length=1,
                                        max_length=MAX_TARGETS, required=False)
    targets = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1,
                                    max_length=MAX_TARGETS, required=False, help_text="SSH target ids")
    selector = serializers.CharField(required=False, max_length=4096, help_text=(
        "A label selector such as 'env=prod,role in (web,api),!canary': SSH targets for an ssh command, "
        "relays' machines for a local one."))
    command = serializers.CharField(required=False, allow_blank=True, help_text="Shell text; or give a script.")
    target_type = serializers.ChoiceField(TargetType.choices, required=False)
    target_host = serializers.CharField(required=False, default="", allow_blank=True, max_length=255)
    target_port = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=65535)
    target_username = serializers.CharField(required=False, default="", allow_blank=True, max_length=100)
    timeout_ms = serializers.IntegerField(default=30_000, min_value=1, max_value=24 * 3600 * 1000)
    priority = serializers.IntegerField(default=5, min_value=1, max_value=10)
    max_concurrency = LimitField(minimum=1, required=False, allow_null=True, help_text=LIMIT_HELP)
    max_errors = LimitField(minimum=0, required=False, allow_null=True,
                            help_text=LIMIT_HELP + " Only failed runs count.")
    queue_if_offline = serializers.BooleanField(default=False, help_text=(
        "Queue copies for machines with no relay online; otherwise they are recorded as not delivered."))

    def validate(self, data: dict) -> dict:
        data = run_options.clean(data)
        given = [name for name in ("machine_ids", "targets", "selector") if data.get(name)]
        if len(given) != 1:
            raise serializers.ValidationError("give exactly one of machine_ids, targets or selector")
        if data.get("targets"):
            data.setdefault("target_type", TargetType.SSH)
        data.setdefault("target_type", TargetType.LOCAL)
        picks_targets = data.get("targets") or (data.get("selector") and data["target_type"] == TargetType.SSH)
        if picks_targets:
            if data["target_type"] != TargetType.SSH:
                raise serializers.ValidationError({"target_type": "SSH targets run ssh commands"})
            if data.get("target_host") or data.get("target_port") or data.get("target_username"):
                raise serializers.ValidationError(
                    {"target_host": "host, port and user come from the SSH targets; leave them out"})
            return data
        return validate_target(data)


class TargetSerializer(serializers.Serializer):
    machine_id = serializers.CharField()
    name = serializers.CharField(help_text="the SSH target's name, or empty for a machine")
    host = serializers.CharField()
    status = serializers.CharField()
    delivered = serializers.SerializerMethodField()
    command_id = serializers.IntegerField(source="command.pk", allow_null=True, default=None)
    exit_code = serializers.IntegerField(source="command.exit_code", allow_null=True, default=None)
    duration_ms = serializers.IntegerField(source="command.duration_ms", allow_null=True, default=None)
    output = serializers.CharField(source="command.output", default="")
    stderr = serializers.CharField(source="command.stderr", default="")
    error = serializers.CharField(source="command.error", default="")

    def get_delivered(self, item: batches.Target) -> bool | None:
        return None if item.command is None else not item.undelivered


class BatchSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(help_text=(
        "awaiting_approval, running, completed, failed, stopped, incomplete, or rejected / expired (never approved)"))
    approval = ApprovalSummarySerializer(read_only=True, allow_null=True, help_text=(
        "Its approval, if it needed one: it dispatches nothing until approved."))
    counts = serializers.SerializerMethodField()
    targets = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CommandBatch
        fields = ["id", "status", "approval", "counts", "command", "selector", "target_type", "target_host", "target_port",
                  "target_username", "timeout_ms", "priority", *run_options.FIELDS, "max_concurrency", "max_errors", "queue_if_offline",
                  "stopped", "targets", "created_by", "created_at"]
        read_only_fields = fields

    def _targets(self, batch: CommandBatch) -> list[batches.Target]:
        cache = self.context.setdefault("targets", {})
        if batch.pk not in cache:
            cache[batch.pk] = batches.targets(batch)
        return cache[batch.pk]

    def get_status(self, batch: CommandBatch) -> str:
        return batches.overall_status(batch, self._targets(batch))

    def get_counts(self, batch: CommandBatch) -> dict[str, int]:
        return batches.counts(self._targets(batch))

    def get_targets(self, batch: CommandBatch) -> list[dict]:
        return TargetSerializer(self._targets(batch), many=True).data


def destinations_for(user, data: dict, how: str = "pass queue_if_offline") -> list[dict]:
    """The batch's destinations, checked: each one runnable by the user and, unless asked otherwise, online."""
    if data.get("machine_ids"):
        destinations = batches.machine_destinations(data["machine_ids"])
    elif data.get("targets"):
        destinations = selection.target_destinations(user, selection.targets_by_id(user, data["targets"]))
    else:
        selector = selector_or_400(data["selector"])
        if data["target_type"] == TargetType.SSH:
            destinations = selection.target_destinations(user, selection.select_targets(user, selector))
        else:
            machines = [relay.machine_id for relay in selection.select_relays(user, selector)]
            destinations = batches.machine_destinations(machines)
        if not destinations:
            raise serializers.ValidationError({"selector": [f"the selector {selector.text!r} matches nothing"]})
    if len(destinations) > MAX_TARGETS:
        raise serializers.ValidationError(f"at most {MAX_TARGETS} targets in one batch")
    machines = list(dict.fromkeys(d["machine_id"] for d in destinations))
    for machine_id in machines:
        require_run_permission(user, machine_id)
    if not data["queue_if_offline"]:
        # Offline machines' copies are recorded "not delivered"; a machine nobody serves is a mistake.
        unserved = [machine_id for machine_id, state in reachability.of_machines(machines).items()
                    if state == reachability.NO_RELAY]
        if unserved:
            raise serializers.ValidationError({"machine_ids": [
                reachability.problem(machine_id, reachability.NO_RELAY, how) for machine_id in sorted(unserved)]})
    return destinations


ACTING_USER = object()


def create_batch(user, data: dict, *, created_by=ACTING_USER, how: str = "pass queue_if_offline",
                 approval: Need | None = None) -> CommandBatch:
    """A batch from validated ``BatchCreateSerializer`` data, as ``user`` may make it; recorded as made by
    ``created_by``, the user unless told otherwise (``manage.py relay_exec`` acting for nobody in particular).
    It passes the approval gate (``commands.approvals``); ``approval`` asks for approval besides the relays'."""
    destinations = destinations_for(user, data, how)
    run_options.require_support(dict.fromkeys(d["machine_id"] for d in destinations), data)
    fields = {name: data[name] for name in ("command", "target_type", "target_host", "target_port",
                                            "target_username", "timeout_ms", "priority", "queue_if_offline",
                                            *run_options.FIELDS)
              if name in data}
    return batches.create(destinations=destinations, created_by=user if created_by is ACTING_USER else created_by,
                          selector=data.get("selector", ""),
                          max_concurrency=data.get("max_concurrency"), max_errors=data.get("max_errors"),
                          approval=approval, **fields)


class BatchViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                   viewsets.GenericViewSet):
    serializer_class = BatchSerializer

    queryset = CommandBatch.objects.none()  # for the schema; get_queryset decides

    def get_queryset(self):
        batches_ = CommandBatch.objects.select_related(
            "created_by", "approval__requested_by", "approval__decided_by").order_by("-created_at")
        if getattr(self, "swagger_fake_view", False):
            return batches_
        return batches.visible_to(self.request.user, batches_)

    def get_serializer_class(self):
        return BatchCreateSerializer if self.action == "create" else BatchSerializer

    def _created(self, batch: CommandBatch) -> Response:
        return Response(BatchSerializer(batch, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=BatchCreateSerializer, responses={201: BatchSerializer})
    def create(self, request: Request) -> Response:
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._created(create_batch(request.user, data.validated_data))

    @extend_schema(request=None, responses={201: BatchSerializer})
    @action(detail=True, methods=["post"], url_path="rerun-failed")
    def rerun_failed(self, request: Request, pk: str | None = None) -> Response:
        """A new batch, like this one, to the targets whose run failed or that were never delivered."""
        batch = self.get_object()
        return self._created(rerun_failed(request.user, batch))

    @extend_schema(request=None, responses={200: BatchSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stop the batch: nothing more is dispatched, queued targets never run, running ones are killed by their
        relays. Needs ``run_command`` on every machine of the batch."""
        batch = self.get_object()
        for machine_id in batch.machine_ids:
            require_run_permission(request.user, machine_id)
        batches.cancel(batch.pk)
        batch.refresh_from_db()
        return Response(BatchSerializer(batch, context=self.get_serializer_context()).data)


def rerun_failed(user, batch: CommandBatch) -> CommandBatch:
    destinations = batches.failed_destinations(batch)
    if not destinations:
        raise serializers.ValidationError("no target of this batch failed or went undelivered")
    for machine_id in dict.fromkeys(d["machine_id"] for d in destinations):
        require_run_permission(user, machine_id)
    fields = {name: getattr(batch, name) for name in batches.TEMPLATE_FIELDS}
    run_options.require_support(dict.fromkeys(d["machine_id"] for d in destinations), fields)
    return batches.create(destinations=destinations, created_by=user, selector=batch.selector,
                          max_concurrency=batch.max_concurrency, max_errors=batch.max_errors,
                          queue_if_offline=batch.queue_if_offline, **fields)
