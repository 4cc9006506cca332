"""Every error leaves the hub as JSON ``{"error": "..."}``, never an HTML page.

Views may set ``error_envelope`` (e.g. ``{"success": False}``) to add the
fields the original relay protocol expects beside ``error``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def flatten(detail: Any, field: str = "") -> str:
    """A one-line message from DRF's nested error detail."""
    if isinstance(detail, dict):
        parts = [flatten(value, f"{field}.{key}" if field else str(key)) for key, value in detail.items()]
        return "; ".join(parts)
    if isinstance(detail, list):
        return "; ".join(flatten(item, field) for item in detail)
    text = str(detail)
    if field and field != "non_field_errors":
        return f"{field}: {text}"
    return text


def json_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        exc = exceptions.APIException("request body too large")
        exc.status_code = 413
    response = exception_handler(exc, context)
    if response is None:
        return None
    # DRF has turned Django's Http404 and PermissionDenied into ``{"detail": ...}`` by now.
    detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
    response.data = error_body(exc, getattr(context.get("view"), "error_envelope", {}), detail)
    return response


def error_body(exc: Exception, envelope: dict[str, Any], detail: Any = None) -> dict[str, Any]:
    """``{**envelope, "error": "one line"}``, plus ``fields`` for a validation error."""
    body: dict[str, Any] = {**envelope, "error": flatten(exc.detail if detail is None else detail)}
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        body["fields"] = exc.detail
    return body


def error_response(request: HttpRequest, status: int, message: str) -> JsonResponse:
    body: dict[str, Any] = {"error": message}
    if request.path.startswith("/relay"):
        body["success"] = False
    return JsonResponse(body, status=status)


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(request, 400, "bad request")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(request, 403, "forbidden")


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    return error_response(request, 403, f"CSRF check failed: {reason}")


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(request, 404, "not found")


def handler500(request: HttpRequest) -> JsonResponse:
    return error_response(request, 500, "internal error")
