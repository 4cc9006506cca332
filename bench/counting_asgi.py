"""relayhub's ASGI application with a request counter in front, for the bench only.

The hub code is untouched: this module wraps ``relayhub.asgi.application`` and
counts each HTTP request by method and route, with the time the hub took to
answer it. ``GET /__bench__/counts`` answers the counts and
``GET /__bench__/timings`` answers ``{route: [count, total_s, max_s]}``, as
JSON (neither is counted). The hub is only ever bound to 127.0.0.1.

Counters live in each process. A hub run with ``uvicorn --workers N`` has N
sets, and an HTTP request reaches whichever worker accepts it; so when
``BENCH_STATS_DIR`` is set, each worker also answers ``counts`` or ``timings``
on the Unix socket ``$BENCH_STATS_DIR/<pid>.sock``, and the bench sums the
workers (``bench.stack.Hub``).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import Counter

from relayhub.asgi import application as hub_application

COUNTS: Counter[str] = Counter()
TIMINGS: dict[str, list[float]] = {}


def _snapshot(what: bytes) -> dict:
    # Copied in one C call each (atomic under the GIL) while the event loop thread keeps counting.
    if what == b"timings":
        return {route: list(entry) for route, entry in list(TIMINGS.items())}
    return dict(COUNTS)


def _serve_stats(directory: str) -> None:
    """This worker's counters on a Unix socket of its own, read by the bench (one request per connection)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(os.path.join(directory, f"{os.getpid()}.sock"))
    server.listen(16)

    def loop() -> None:
        while True:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(10)
                try:
                    what = conn.recv(64).strip()
                    conn.sendall(json.dumps(_snapshot(what)).encode())
                except OSError:
                    pass

    threading.Thread(target=loop, name="bench-stats", daemon=True).start()


if os.environ.get("BENCH_STATS_DIR"):
    _serve_stats(os.environ["BENCH_STATS_DIR"])


async def _answer(send, data: dict) -> None:  # noqa: ANN001
    body = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def application(scope, receive, send):  # noqa: ANN001, ANN201 - ASGI signature
    if scope["type"] != "http":
        return await hub_application(scope, receive, send)
    path = scope["path"]
    if path == "/__bench__/counts":
        return await _answer(send, dict(COUNTS))
    if path == "/__bench__/timings":
        return await _answer(send, TIMINGS)
    route = f"{scope['method']} {path.rstrip('/')}"
    COUNTS[route] += 1
    started = time.perf_counter()

    async def timed_send(message) -> None:  # noqa: ANN001
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            took = time.perf_counter() - started
            entry = TIMINGS.setdefault(route, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += took
            entry[2] = max(entry[2], took)

    return await hub_application(scope, receive, timed_send)
