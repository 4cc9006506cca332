"""Server-Sent Events for the live admin pages: the wire format, the response, and the loop that feeds it.

A stream is an async view's ``StreamingHttpResponse`` over an async generator (``response``) of ``follow``.
``follow`` looks at the database when woken (``wait``, the notifier's subscription) or every ``poll_s``
anyway, sends a comment when nothing else was sent for ``heartbeat_s`` (so proxies keep the connection),
and ends after ``lifetime_s``: the browser's EventSource reconnects by itself after ``retry``, carrying the
last event's ``id`` as ``Last-Event-ID``. Each look runs on a thread and gives its database connection back,
so an open page holds none while it waits.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

T = TypeVar("T")


def event(data: Any, *, name: str = "", id: str = "") -> bytes:  # noqa: A002 - the field's name in the format
    """One event; ``data`` as JSON, on one line (JSON escapes newlines), so that it is one ``data:`` field."""
    lines = [f"event: {name}"] if name else []
    if id:
        lines.append(f"id: {id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str) -> bytes:
    return f": {text}\n\n".encode()


def retry(ms: int) -> bytes:
    return f"retry: {ms}\n\n".encode()


def not_served_here(request: HttpRequest) -> HttpResponse | None:
    """501 when the hub runs under WSGI, which would buffer a stream whole: the page then polls instead."""
    if isinstance(request, ASGIRequest):
        return None
    return HttpResponse("live streams need the hub under ASGI (python -m relayhub.serve)", status=501,
                        content_type="text/plain")


def response(events: AsyncIterator[bytes]) -> StreamingHttpResponse:
    answer = StreamingHttpResponse(events, content_type="text/event-stream")
    answer["Cache-Control"] = "no-cache"
    answer["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return answer


def last_event_id(request: HttpRequest) -> str:
    return request.headers.get("Last-Event-ID", "")


def _released(fn: Callable[..., T]) -> Callable[..., T]:
    def run(*args: Any) -> T:
        try:
            return fn(*args)
        finally:
            for connection in connections.all(initialized_only=True):
                if not connection.in_atomic_block:  # a test's transaction is not ours to end
                    connection.close()  # even a persistent one (CONN_MAX_AGE): a stream waits for minutes

    return run


async def in_db(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` on the request's thread, as Django's own hand-offs do; its connection is closed after (given
    back to the pool, with one), so that a stream holds none while it waits."""
    return await sync_to_async(_released(fn), thread_sensitive=True)(*args)


def timings(poll: str = "LIVE_POLL_MS") -> dict[str, float]:
    """``follow``'s timings from settings; ``poll`` names the setting of the poll interval."""
    live = settings.RELAYHUB
    return {"poll_s": live[poll] / 1000, "lifetime_s": live["LIVE_STREAM_S"],
            "heartbeat_s": live["LIVE_HEARTBEAT_S"], "retry_ms": live["LIVE_RETRY_MS"]}


async def follow(look: Callable[[], Awaitable[tuple[list[bytes], bool]]],
                 wait: Callable[[float], Awaitable[bool]], *, poll_s: float, lifetime_s: float, heartbeat_s: float,
                 retry_ms: int, min_gap_s: float = 0.0) -> AsyncIterator[bytes]:
    """The events of ``look()`` (which says too whether the stream is done) until done or ``lifetime_s`` is over.

    ``wait(timeout)`` returns once woken or after ``timeout``; looks are at least ``min_gap_s`` apart.
    """
    yield retry(retry_ms)
    start = last_sent = last_look = time.monotonic()
    while True:
        events, done = await look()
        last_look = time.monotonic()
        for chunk in events:
            yield chunk
        if events:
            last_sent = last_look
        if done:
            return
        while True:
            now = time.monotonic()
            if now - start >= lifetime_s:
                return
            if now - last_sent >= heartbeat_s:
                yield comment("keep-alive")
                last_sent = now
            woken = await wait(max(min(poll_s - (now - last_look), heartbeat_s - (now - last_sent),
                                       lifetime_s - (now - start)), 0))
            if woken and (gap := min_gap_s - (time.monotonic() - last_look)) > 0:
                await asyncio.sleep(gap)  # wake-ups that come meanwhile are kept for the next wait
            if woken or time.monotonic() - last_look >= poll_s:
                break
