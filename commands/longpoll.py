"""``POST /relay/commands/next``: claim up to ``max`` commands, waiting up to ``waitMs``.

An async view, so that a waiting relay costs a coroutine rather than a thread.
Database work runs on the shared relay threads and gives its connection back
before the view waits, so idle relays hold no database connection either.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers

from commands import full_output, notify
from commands.choices import CommandKind, CommandStatus
from commands.models import Command
from relayhub.relay.auth import HEADER
from relayhub.relay.routes import authenticate, error_for, in_db, listed_in_schema, parse_body, preflight
from relayhub.relay.schema import WireCommand, relay_schema
from relayhub.web import metrics
from relayhub.web.fields import StrictCharField, StrictIntegerField, wire_id

MAX_BATCH = 50
# A relay with config pushes waiting is answered this soon, so that it fetches them at once; an agent that
# does not know configPending then asks again this often, not in a tight loop.
CONFIG_PENDING_WAIT_S = 0.5


class NextBody(serializers.Serializer):
    max = StrictIntegerField(required=False, default=1, min_value=1, max_value=MAX_BATCH)
    waitMs = StrictIntegerField(required=False, default=0, min_value=0)
    holding = serializers.ListField(
        child=StrictCharField(max_length=18), required=False, default=list, max_length=1000,
        help_text="ids of commands the relay has already; a claim of these is not handed out again")
    session = StrictCharField(
        required=False, default="", max_length=64, help_text=(
            "this run of the agent: each command claimed is started by the claim too (answered with "
            '"started": true, no POST /relay/commands/started needed), and handed out again only to this session '
            "while not in holding, which must then list every command it has, running or with its result not yet "
            "acknowledged"))

    def validate_holding(self, ids: list[str]) -> list[int]:
        return [pk for pk in map(wire_id, ids) if pk is not None]


def _first_look(raw_key: str, raw_body: bytes) -> tuple:
    relay = authenticate(raw_key)
    body = parse_body(raw_body, NextBody)
    relay.record_fetch(timezone.now())
    published = notify.notifier.published(notify.machine_topic(relay.machine_id))
    return relay, body, published, _claim(relay, body)


def _claim(relay, body: dict) -> list[tuple[Command, dict]]:
    """Claimed commands with their wire shapes, made here in the database thread: a secret is read from it."""
    claimed = Command.claim_next(relay, body["max"], body["holding"], body["session"])
    return [(command, _wire(command)) for command in claimed]


def _wire(command: Command) -> dict:
    wire = command.to_wire(attempt=True)
    if command.status == CommandStatus.EXECUTING:
        wire["started"] = True  # extension: the claim started it (a `session` poll); no `started` to post
    return wire


def _config_pushes_seen(relay) -> int:
    return notify.notifier.published(notify.config_topic(relay.pk))


def _config_waiting(relay) -> bool:
    """Pushes queued before this poll began and not fetched yet (one queued meanwhile wakes the poll)."""
    status = getattr(relay, "status", None)
    return status is not None and status.config_pending_at is not None


def _poll_interval() -> float:
    # With a broker, wake-ups cross processes and the poll is only a safety net.
    key = "LONGPOLL_SAFETY_POLL_MS" if notify.notifier.broadcast else "LONGPOLL_DB_POLL_MS"
    return settings.RELAYHUB[key] / 1000


def _answer(claimed: list[tuple[Command, dict]], config_pending: bool = False) -> JsonResponse:
    body: dict = {"commands": [wire for _, wire in claimed]}
    keep = full_output.wire_request() if claimed else None
    if keep:
        # Extension: keep each stream over the cap whole and upload it (commands.full_output); probes print little.
        # Not for a command carrying secrets: its output is stored only masked (commands.secrets).
        for command, wire in claimed:
            if command.kind != CommandKind.PROBE and not command.secret_environment:
                wire["fullOutput"] = keep
    if config_pending:
        # Extension: a config push was queued while the relay waited; it fetches it now, not at its heartbeat.
        body["configPending"] = True
    return JsonResponse(body)


@relay_schema(request=NextBody, summary="Extension: claim up to max commands, waiting up to waitMs",
              response=inline_serializer("NextCommands", {
                  "commands": WireCommand(many=True),
                  "configPending": serializers.BooleanField(required=False, help_text=(
                      "a config push was queued while the relay waited: fetch config pushes now"))}))
@listed_in_schema
@csrf_exempt
async def next_commands(request: HttpRequest) -> JsonResponse:
    answer = preflight(request, ("POST",))
    if answer is not None:
        return answer
    try:
        relay, body, published, claimed = await in_db(_first_look, request.META[HEADER], request.body)
    except exceptions.APIException as exc:
        return error_for(exc)
    wait_s = min(body["waitMs"], settings.RELAYHUB["LONGPOLL_MAX_MS"]) / 1000
    config_waiting = _config_waiting(relay)
    if claimed or wait_s <= 0:
        return _answer(claimed, config_waiting)
    if config_waiting:
        wait_s = min(wait_s, CONFIG_PENDING_WAIT_S)

    deadline = time.monotonic() + wait_s
    topic = notify.machine_topic(relay.machine_id)
    config_seen = _config_pushes_seen(relay)
    with notify.notifier.listen(topic) as subscription, metrics.LONGPOLLS_HELD.track_inprogress():
        # Now subscribed: look again only if a wake-up came since just before the first look.
        look = notify.notifier.published(topic) != published
        while True:
            if look:
                claimed = await in_db(_claim, relay, body)
            look = True
            remaining = deadline - time.monotonic()
            config_queued = _config_pushes_seen(relay) != config_seen
            if claimed or remaining <= 0 or config_queued:
                return _answer(claimed, config_waiting or config_queued)
            woken = await subscription.wait(min(remaining, _poll_interval()))
            if not woken and notify.notifier.broadcast and time.monotonic() >= deadline:
                # The broker wakes every waiter when it reconnects, so a quiet wait means nothing was queued.
                return _answer([], config_waiting)

