"""A tiny HTTP server on 127.0.0.1 that stands in for a hub (or a proxy) in agent tests."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# (path, JSON body) -> (status, JSON answer)
Answer = Callable[[str, dict], tuple[int, dict]]

RELAYHUB_HELLO = {"service": "relayhub"}


def is_hello(path: str) -> bool:
    """``/relay/hello``, also as a proxy sees it (an absolute URL), with or without a slash or query."""
    return path.partition("?")[0].rstrip("/").endswith("/relay/hello")


@contextmanager
def stub_server(
    answer: Answer, hello: dict | None = RELAYHUB_HELLO, headers: list[dict[str, str]] | None = None
) -> Iterator[tuple[str, list[tuple[str, dict]]]]:
    """Serve POSTs and GETs with ``answer``; yields the base URL and the (path, body) pairs received.

    A GET's path keeps its query string and its body is {}. ``GET /relay/hello`` is answered with
    ``hello``, as a relayhub would, unless ``hello`` is None: then ``answer`` gets it too. Each
    request's headers go to ``headers`` when given, in the order of ``received``.
    """
    received: list[tuple[str, dict]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            received.append((self.path, body))
            if headers is not None:
                headers.append(dict(self.headers.items()))
            if hello is not None and self.command == "GET" and is_hello(self.path):
                status, data = 200, hello
            else:
                status, data = answer(self.path, body)
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
