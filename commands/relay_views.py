"""Relay routes for the command queue (SPEC §3), and the heartbeat, which answers the cancels."""

from __future__ import annotations

import logging
from contextlib import nullcontext

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from commands import full_output, output, results
from commands.choices import CommandStatus, Stream
from commands.longpoll import MAX_BATCH
from commands.models import Command, IllegalTransition
from relayhub.relay.auth import HEADER
from relayhub.relay.routes import Refusal, authenticate, error_for, in_db, listed_in_schema, preflight, relay_route
from relayhub.relay.schema import RelayError, WireCommand, relay_schema, success
from relayhub.relay.views import RelayAPIView, check_relay_id, ok
from relayhub.web.errors import flatten
from relayhub.web.fields import INT32_MAX, INT64_MAX, StrictCharField, StrictIntegerField, wire_id

log = logging.getLogger(__name__)


def failure(status: int, error: str) -> Response:
    return Response({"success": False, "error": error}, status=status)


class PendingCommandsView(RelayAPIView):
    @relay_schema(summary="Pending commands for this relay's machine, best first, at most 10",
                  response=inline_serializer("PendingCommands", {"commands": WireCommand(many=True)}))
    def get(self, request: Request) -> Response:
        limit = settings.RELAYHUB["PENDING_LIST_LIMIT"]
        self.relay.record_fetch(timezone.now())
        pending = Command.objects.pending_for(self.relay.machine_id)[:limit]
        return Response({"commands": [command.to_wire() for command in pending]})


class ClaimBody(serializers.Serializer):
    commandId = StrictCharField()


class ClaimView(RelayAPIView):
    @relay_schema(request=ClaimBody, summary="Claim one pending command", response=success(
        "ClaimResponse", command=WireCommand()))
    def post(self, request: Request) -> Response:
        command = results.find_command(self.relay, self.body(ClaimBody)["commandId"])
        self.relay.record_fetch(timezone.now())
        if command is None:
            return failure(404, "command not found")
        if not command.claim(self.relay):
            return failure(400, "command is not pending")
        return ok(command={**command.to_wire(created_at=False), "attempt": command.attempt})


class StartedBody(serializers.Serializer):
    commandId = StrictCharField()
    attempt = StrictIntegerField(min_value=1, max_value=INT32_MAX)


class StartedManyBody(serializers.Serializer):
    commands = StartedBody(many=True, allow_empty=False, max_length=MAX_BATCH)


class StartedRequest(serializers.Serializer):
    """One command, or several (the commands of one ``next`` answer) under ``commands``."""

    def to_internal_value(self, data: dict) -> dict:
        body = StartedManyBody(data=data) if "commands" in data else StartedBody(data=data)
        body.is_valid(raise_exception=True)
        return body.validated_data


def claimed_command(relay, data: dict) -> Command:
    """The caller's claimed command at the caller's attempt; ``Refusal`` otherwise."""
    command = results.find_command(relay, data["commandId"], claimed_by=relay)
    if command is None:
        raise Refusal(404, "command not found")
    if data["attempt"] != command.attempt:
        raise Refusal(409, f"stale attempt {data['attempt']}; the command is on attempt {command.attempt}")
    return command


def mark_started(relay, data: dict) -> dict:
    items = data["commands"] if "commands" in data else [data]
    keys = [(wire_id(item["commandId"]), item["attempt"]) for item in items]
    started = Command.start_claimed(relay, [key for key in keys if key[0] is not None])
    if "commands" not in data:
        return start_one(relay, data, started.get(keys[0]))
    answers = []
    for key, item in zip(keys, items):
        try:
            answers.append({"commandId": item["commandId"], "status": 200, **start_one(relay, item, started.get(key))})
        except Refusal as refusal:
            answers.append({"commandId": item["commandId"], "status": refusal.status, "error": refusal.error})
    return {"commands": answers}


def start_one(relay, data: dict, cancel_requested: bool | None) -> dict:
    """The answer for one command; ``cancel_requested`` is None if the one-statement start did not move it."""
    if cancel_requested is not None:
        return {"cancelRequested": cancel_requested}
    # Not the usual case: say why (404, stale attempt), or take a repeated `started` as the same one.
    command = claimed_command(relay, data)
    try:
        command.start(relay, command.attempt)
    except IllegalTransition as exc:
        raise Refusal(409, str(exc)) from None
    return {"cancelRequested": command.cancel_requested}


def apply_result(relay, data: dict) -> dict:
    outcome = results.submit(relay, data)
    if outcome.http_status != 200:
        raise Refusal(outcome.http_status, outcome.error)
    return {}


class ResultsBody(serializers.Serializer):
    results = serializers.ListField(child=serializers.DictField(), max_length=100)


def apply_results(relay, data: dict) -> dict:
    """Each result answered on its own; several are applied in one transaction (one commit)."""
    items = data["results"]
    everything = results.ResultBody(data=items, many=True)
    if everything.is_valid():  # the usual case, and validating them together is four times cheaper
        checked = [(item, body, None) for item, body in zip(items, everything.validated_data)]
    else:
        checked = []
        for item in items:
            body = results.ResultBody(data=item)
            ok = body.is_valid()
            checked.append((item, body.validated_data if ok else None, None if ok else flatten(body.errors)))
    valid = [body for _, body, _ in checked if body is not None]
    with transaction.atomic() if len(valid) > 1 else nullcontext():
        outcomes = iter(results.submit_many(relay, valid))
    answers = []
    for item, body, error in checked:
        command_id = item.get("commandId")
        answer = {"commandId": command_id if isinstance(command_id, str) else None}
        if body is None:
            answers.append({**answer, "status": 400, "error": error})
            continue
        outcome = next(outcomes)
        answers.append({**answer, "status": outcome.http_status, **({"error": outcome.error} if outcome.error else {})})
    return {"results": answers}


started = relay_schema(
    request=PolymorphicProxySerializer("StartedRequest", [StartedBody, StartedManyBody], None),
    summary="Extension: the command is about to run (or several, each answered on its own)",
    extra_errors={409: RelayError},
    response=PolymorphicProxySerializer("StartedResponse", [
        success("StartedOne", cancelRequested=serializers.BooleanField()),
        success("StartedMany", commands=serializers.ListField(child=serializers.DictField()))], None),
)(relay_route(mark_started, StartedRequest))
result = relay_schema(request=results.ResultBody, summary="Report a command's result (idempotent)",
                      response=success("ResultResponse"), extra_errors={409: RelayError},
                      )(relay_route(apply_result, results.ResultBody))
results_batch = relay_schema(
    request=ResultsBody, summary="Extension: several results at once, each answered on its own",
    response=success("ResultsResponse", results=serializers.ListField(child=serializers.DictField())),
)(relay_route(apply_results, ResultsBody))


class HeartbeatBody(serializers.Serializer):
    relayId = serializers.JSONField(required=False)


def heartbeat(relay, data: dict) -> dict:
    check_relay_id(relay, data.get("relayId"))
    # Authentication has recorded the sign of life already (at most every few seconds).
    cancel_ids = relay.claimed_commands.filter(
        status__in=CommandStatus.active(), cancel_requested=True
    ).values_list("pk", flat=True)
    return {"cancelCommandIds": [str(pk) for pk in cancel_ids]}


heartbeat_route = relay_schema(
    request=HeartbeatBody, summary="Sign of life; lists commands whose cancel was requested",
    response=success("HeartbeatResponse", cancelCommandIds=serializers.ListField(child=serializers.CharField())),
)(relay_route(heartbeat, HeartbeatBody))


class ChunkBody(serializers.Serializer):
    stream = serializers.ChoiceField(Stream.choices)
    offset = StrictIntegerField(min_value=0, max_value=INT64_MAX)
    data = StrictCharField(allow_blank=True, trim_whitespace=False)


class OutputBody(StartedBody):
    chunks = ChunkBody(many=True, max_length=1000)


class OutputView(RelayAPIView):
    """Chunks for a command that has ended are refused (409), so the relay stops it."""

    @relay_schema(request=OutputBody, summary="Extension: stream output chunks (idempotent on stream and offset)",
                  extra_errors={409: RelayError},
                  response=success("OutputResponse", cancelRequested=serializers.BooleanField()))
    def post(self, request: Request) -> Response:
        data = self.body(OutputBody)
        try:
            command = claimed_command(self.relay, data)
        except Refusal as refusal:
            return failure(refusal.status, refusal.error)
        if command.is_terminal:
            return failure(409, f"command already {command.status}")
        output.store_chunks(command, data["chunks"])
        return ok(cancelRequested=command.cancel_requested)


class FullOutputQuery(serializers.Serializer):
    commandId = serializers.CharField(max_length=40)
    attempt = serializers.IntegerField(min_value=1, max_value=INT32_MAX)
    stream = serializers.ChoiceField(Stream.choices)
    sha256 = serializers.RegexField(r"^[0-9a-f]{64}\Z", help_text="of the body, lowercase hex")


def _upload_target(raw_key: str, query: dict, length: int | None) -> tuple[Command, dict, bool]:
    """The caller's claimed command, the query, and whether this copy is stored already; ``Refusal`` otherwise."""
    relay = authenticate(raw_key)
    params = FullOutputQuery(data=query)
    params.is_valid(raise_exception=True)
    data = params.validated_data
    if not full_output.enabled():
        raise Refusal(409, "this hub does not keep full output (RELAYHUB_KEEP_FULL_OUTPUT)")
    command = claimed_command(relay, data)
    if length is None:
        raise Refusal(411, "a full-output upload needs a Content-Length")
    if length > full_output.max_bytes():
        raise Refusal(413, f"full output of {length} bytes is over this hub's limit of {full_output.max_bytes()} bytes")
    return command, data, full_output.already_stored(command, data["stream"], data["sha256"])


@relay_schema(
    summary="Extension: the whole of one stream of a command this relay ran, as the body",
    request={"application/octet-stream": OpenApiTypes.BINARY},
    parameters=[OpenApiParameter(name, str if name != "attempt" else int, required=True)
                for name in ("commandId", "attempt", "stream", "sha256")],
    response=success("FullOutputResponse"), extra_errors={409: RelayError, 411: RelayError, 413: RelayError},
)
@listed_in_schema
@csrf_exempt
async def full_output_upload(request: HttpRequest) -> JsonResponse:
    """Streamed into the storage on a thread of its own: it may take a while, and relay threads are few."""
    answer = preflight(request, ("POST",))
    if answer is not None:
        return answer
    raw_length = request.META.get("CONTENT_LENGTH")
    length = int(raw_length) if raw_length else None  # BodySizeLimitMiddleware refused a malformed one
    try:
        command, data, stored = await in_db(_upload_target, request.META[HEADER], request.GET, length)
    except exceptions.APIException as exc:
        return error_for(exc)
    except Refusal as refusal:
        return failure_json(refusal.status, refusal.error)
    if stored:
        return JsonResponse({"success": True})
    try:
        name = await sync_to_async(full_output.save, thread_sensitive=False)(
            command, data["stream"], request, length, data["sha256"])
    except full_output.UploadMismatch as exc:
        return failure_json(400, str(exc))
    except Exception:
        log.exception("storing the full output of command %s failed", command.pk)
        return failure_json(503, "the full output could not be stored; try again later")
    await in_db(full_output.record, command, data["stream"], name, length, data["sha256"])
    return JsonResponse({"success": True})


def failure_json(status: int, error: str) -> JsonResponse:
    return JsonResponse({"success": False, "error": error}, status=status)
