from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware

from relayhub.web import failed_auth, metrics
from relayhub.web.errors import error_response


class SyncAndAsync:
    """A middleware that is sync or async as the handler after it is.

    One sync-only middleware would make Django run every request on a thread,
    and a waiting long-poll would then hold one.
    """

    sync_capable = True
    async_capable = True

    def run_as(self, get_response: Callable) -> None:
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)


class BodySizeLimitMiddleware(SyncAndAsync):
    """Answer 413 before reading a body larger than ``MAX_BODY_BYTES``.

    Routes listed in ``OWN_BODY_LIMIT_PATHS`` (the full-output upload) check a larger limit themselves.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        self.run_as(get_response)

    def __call__(self, request: HttpRequest):
        refusal = self.refuse(request)
        if self.is_async:
            return self._acall(request, refusal)
        return refusal or self.get_response(request)

    async def _acall(self, request: HttpRequest, refusal: HttpResponse | None) -> HttpResponse:
        return refusal or await self.get_response(request)

    @staticmethod
    def refuse(request: HttpRequest) -> HttpResponse | None:
        limit = settings.RELAYHUB["MAX_BODY_BYTES"]
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(request, 400, "invalid Content-Length")
        if length > limit and request.path_info.rstrip("/") not in settings.RELAYHUB.get("OWN_BODY_LIMIT_PATHS", ()):
            return error_response(request, 413, f"request body exceeds {limit} bytes")
        return None


class ClientAddressMiddleware(SyncAndAsync):
    """Let credential checks anywhere below count their failures against the request's address.

    ``relayhub.web.failed_auth.guard`` runs deep inside authentication, on
    another thread for async relay routes, where the request itself is not at
    hand; a context variable carries the request there. The audit trail takes
    its address and signed-in user from it too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        self.run_as(get_response)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        token = failed_auth.bind(request)
        try:
            return self.get_response(request)
        finally:
            failed_auth.unbind(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        token = failed_auth.bind(request)
        try:
            return await self.get_response(request)
        finally:
            failed_auth.unbind(token)


class RequestMetricsMiddleware(SyncAndAsync):
    """Count each answer by its URL route pattern, method and status (``relayhub_http_requests_total``).

    The pattern (``api/v1/commands/<pk>/cancel/``), never the path, keeps the number of series bounded.
    First in the list, so that it sees every answer, those refused before routing too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        self.run_as(get_response)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        return self.counted(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self.counted(request, await self.get_response(request))

    @staticmethod
    def counted(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        match = getattr(request, "resolver_match", None)
        metrics.request_answered(match.route if match is not None else None, request.method, response.status_code)
        return response


class OnTheLoop:
    """Run a Django ``MiddlewareMixin`` middleware that does no I/O on the event loop.

    Django's mixin hands each of its hooks to a thread under ASGI, the largest
    cost of a small relay request.
    """

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = self.process_request(request)
        if response is None:
            response = await self.get_response(request)
        return self.process_response(request, response)


class AsyncSecurityMiddleware(OnTheLoop, SecurityMiddleware):
    pass


class AsyncCommonMiddleware(OnTheLoop, CommonMiddleware):
    """Also what sets ``Content-Length``: without it answers go out chunked."""
