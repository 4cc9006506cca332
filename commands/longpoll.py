"""``POST /relay/commands/next``: claim up to ``max`` commands, waiting up to ``waitMs``.

An async view, so that a waiting relay costs a coroutine rather than a thread.
Database work runs on the shared thread pool and gives its connection back
before the view waits, so idle relays hold no database connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from commands import notify
from commands.models import Command
from relayhub.errors import flatten
from relayhub.fields import StrictIntegerField
from relayhub.relay_api import RelayAPIView
from relayhub.relay_auth import HEADER, authenticate_relay
from relayhub.relay_schema import WireCommand, relay_schema
from relayhub.throttling import RelayKeyThrottle

T = TypeVar("T")
MAX_BATCH = 50


class NextBody(serializers.Serializer):
    max = StrictIntegerField(required=False, default=1, min_value=1, max_value=MAX_BATCH)
    waitMs = StrictIntegerField(required=False, default=0, min_value=0)


def _released(fn: Callable[..., T]) -> Callable[..., T]:
    def run(*args: Any) -> T:
        try:
            return fn(*args)
        finally:
            close_old_connections()

    return run


async def in_db(fn: Callable[..., T], *args: Any) -> T:
    return await sync_to_async(_released(fn), thread_sensitive=False)(*args)


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"success": False, "error": message}, status=status)


def _parse(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise exceptions.ParseError("request body must be JSON") from None
    if not isinstance(data, dict):
        raise exceptions.ParseError("request body must be a JSON object")
    body = NextBody(data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _authenticate(raw_key: str):
    relay = authenticate_relay(raw_key)
    if not RelayKeyThrottle().allow_relay(relay):
        raise exceptions.Throttled()
    return relay


def _poll_interval() -> float:
    # With a broker, wake-ups cross processes and the poll is only a safety net.
    key = "LONGPOLL_SAFETY_POLL_MS" if notify.notifier.broadcast else "LONGPOLL_DB_POLL_MS"
    return settings.RELAYHUB[key] / 1000


async def next_commands(request: HttpRequest) -> JsonResponse:
    if request.method == "OPTIONS":
        return JsonResponse({}, status=200, headers={"Allow": "POST, OPTIONS"})
    if request.method != "POST":
        return error(405, f'method "{request.method}" not allowed')
    try:
        if HEADER not in request.META:
            raise exceptions.NotAuthenticated()
        relay = await in_db(_authenticate, request.META[HEADER])
        body = _parse(request)
    except exceptions.APIException as exc:
        return error(exc.status_code, flatten(exc.detail))

    wait_s = min(body["waitMs"], settings.RELAYHUB["LONGPOLL_MAX_MS"]) / 1000
    deadline = time.monotonic() + wait_s
    # Subscribed before the first look, so a command queued in between is not missed.
    with notify.notifier.listen(notify.machine_topic(relay.machine_id)) as subscription:
        while True:
            claimed = await in_db(Command.claim_next, relay, body["max"])
            remaining = deadline - time.monotonic()
            if claimed or remaining <= 0:
                return JsonResponse({"commands": [command.to_wire(attempt=True) for command in claimed]})
            await subscription.wait(min(remaining, _poll_interval()))


class NextCommandsDoc(RelayAPIView):
    """Describes ``next_commands`` in the OpenAPI schema; never routed."""

    @relay_schema(request=NextBody, summary="Extension: claim up to max commands, waiting up to waitMs",
                  response=inline_serializer("NextCommands", {"commands": WireCommand(many=True)}))
    def post(self, request: Request) -> Response:
        raise NotImplementedError("served by next_commands")
