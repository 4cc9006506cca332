"""Async relay routes: the hot path of the wire protocol without DRF's per-request machinery.

A relay request here costs one hand-off to a thread, where the key is checked,
the rate counted and the work done, and nothing else: no DRF request wrapping,
content negotiation or parser machinery. Errors have the same JSON shape as
the DRF relay views (``relayhub.web.errors``). Each route is described in the
OpenAPI schema by ``extend_schema`` on the route itself (``listed_in_schema``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers
from rest_framework.views import APIView

from assignments.models import RelayAssignment
from relayhub.relay.auth import HEADER, authenticate_relay
from relayhub.relay.throttling import RelayKeyThrottle
from relayhub.relay.views import RelayAPIView
from relayhub.web import json_body
from relayhub.web.errors import error_body, error_response

T = TypeVar("T")
Action = Callable[[RelayAssignment, dict], dict]


def _released(fn: Callable[..., T]) -> Callable[..., T]:
    def run(*args: Any) -> T:
        try:
            return fn(*args)
        finally:
            for connection in connections.all(initialized_only=True):
                # Inside a transaction (a test's) the connection is not ours to end.
                if not connection.in_atomic_block:
                    connection.close_if_unusable_or_obsolete()

    return run


async def in_db(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` on the request's thread; its database connection goes back to the pool after.

    Thread-sensitive, like Django's own hand-offs: under ASGI that is one of
    the relay threads (``relayhub.asgi.RelayASGIHandler``), and under the test
    client the test's own thread and transaction.
    """
    return await sync_to_async(_released(fn), thread_sensitive=True)(*args)


class Refusal(Exception):
    """A non-200 answer from an action, e.g. 404 for a command the relay may not see."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def error_for(exc: exceptions.APIException) -> JsonResponse:
    headers = {}
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        headers["WWW-Authenticate"] = "X-API-Key"
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    return JsonResponse(error_body(exc, {"success": False}), status=exc.status_code, headers=headers)


def parse_body(raw: bytes, body: type[serializers.Serializer]) -> dict:
    """The validated JSON object of a request; any Content-Type is accepted, as from original relays."""
    data = json_body.loads(raw)
    if not isinstance(data, dict):
        raise exceptions.ParseError("request body must be a JSON object")
    serializer = body(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def authenticate(raw_key: str) -> RelayAssignment:
    """The relay for a key, counted against its rate; raises the 401/403/429 to answer."""
    relay = authenticate_relay(raw_key)
    throttle = RelayKeyThrottle()
    if not throttle.allow_relay(relay):
        raise exceptions.Throttled(throttle.wait())
    return relay


def preflight(request: HttpRequest, methods: tuple[str, ...]) -> JsonResponse | None:
    """The answer to give before any database work: OPTIONS, a wrong method or no key."""
    allow = ", ".join((*methods, "OPTIONS"))
    if request.method == "OPTIONS":
        return JsonResponse({}, headers={"Allow": allow})
    if request.method not in methods:
        return JsonResponse({"success": False, "error": f'Method "{request.method}" not allowed.'}, status=405,
                            headers={"Allow": allow})
    if HEADER not in request.META:
        return error_for(exceptions.NotAuthenticated())
    return None


def relay_route(action: Action, body: type[serializers.Serializer] | None = None,
                methods: tuple[str, ...] = ("POST",)) -> Callable[[HttpRequest], Any]:
    """An async view answering ``{"success": true, **action(relay, data)}``.

    ``action`` runs on the database pool right after authentication, in the
    same hand-off. It may raise ``Refusal`` or a DRF ``APIException``.
    """

    def authenticated_action(raw_key: str, raw_body: bytes) -> dict:
        relay = authenticate(raw_key)
        return action(relay, parse_body(raw_body, body) if body is not None else {})

    @csrf_exempt
    async def view(request: HttpRequest) -> JsonResponse:
        answer = preflight(request, methods)
        if answer is not None:
            return answer
        try:
            data = await in_db(authenticated_action, request.META[HEADER], request.body)
        except exceptions.APIException as exc:
            return error_for(exc)
        except Refusal as refusal:
            return error_response(request, refusal.status, refusal.error)
        return JsonResponse({"success": True, **data})

    view.relay_action = action  # type: ignore[attr-defined]
    return listed_in_schema(view, methods, action.__name__)


def listed_in_schema(view: Callable, methods: tuple[str, ...] = ("POST",), name: str = "") -> Callable:
    """Let drf-spectacular list an async route and ``extend_schema`` describe it, as for an ``@api_view`` function.

    Like DRF's ``@api_view``, this gives the function a view class (``cls``),
    whose key scheme and parsers (those of ``RelayAPIView``) the schema shows.
    Requests never reach that class: the route answers them itself.
    """
    def unserved(self: APIView, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"{view.__module__}.{name or view.__name__} answers its own requests")

    handlers = {method.lower(): unserved for method in methods}
    view.cls = type(name or view.__name__, (RelayAPIView,),  # type: ignore[attr-defined]
                    {"__module__": view.__module__, "http_method_names": list(handlers), **handlers})
    view.initkwargs = {}  # type: ignore[attr-defined]
    return view
