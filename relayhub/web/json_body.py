"""Request bodies as JSON, refusing nesting deeper than ``MAX_JSON_DEPTH`` with a 400.

Python's parser raises ``RecursionError`` (not ``ValueError``) for a body like
``[`` repeated thousands of times, which would surface as a 500. And a body
parsed just below the interpreter's limit would fail later, when the value is
stored, read back or rendered one call stack deeper; so the depth is capped
well below either.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers


def max_depth() -> int:
    return settings.RELAYHUB["MAX_JSON_DEPTH"]


def too_deep(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels; iterative, so any depth is safe to check."""
    pending = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def refuse_deep(data: Any, raw: bytes | None = None) -> Any:
    limit = max_depth()
    # Fewer brackets in the text than the limit cannot nest past it: no walk for ordinary bodies.
    if raw is not None and raw.count(b"[") + raw.count(b"{") <= limit:
        return data
    if too_deep(data, limit):
        raise exceptions.ParseError(f"JSON nested deeper than {limit} levels")
    return data


def loads(raw: bytes) -> Any:
    """The JSON value of a body (``{}`` when empty); a ``ParseError`` (400) for anything else."""
    try:
        data = json.loads(raw or b"{}")
    except RecursionError:
        raise exceptions.ParseError(f"JSON nested deeper than {max_depth()} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise exceptions.ParseError("request body must be JSON") from None
    return refuse_deep(data, raw)


class JSONParser(parsers.JSONParser):
    """DRF's parser, with too-deep bodies answered 400 like any other malformed JSON."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:  # noqa: ANN001 - DRF's signature
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {max_depth()} levels") from None
        return refuse_deep(data)


class AnyContentTypeJSONParser(JSONParser):
    """Original relays do not always send ``Content-Type: application/json``."""

    media_type = "*/*"
