from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from relayhub.errors import error_response


class BodySizeLimitMiddleware:
    """Answer 413 before reading a body larger than ``MAX_BODY_BYTES``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.RELAYHUB["MAX_BODY_BYTES"]
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(request, 400, "invalid Content-Length")
        if length > limit:
            return error_response(request, 413, f"request body exceeds {limit} bytes")
        return self.get_response(request)
