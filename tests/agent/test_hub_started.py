"""Announcing several commands to a hub that takes only one per request."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from relay_agent.hub import HubClient


class SingleStartedHub(http.server.BaseHTTPRequestHandler):
    """Answers `started` as a hub without the list form does: 400 for {"commands": [...]}."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    bodies: list[dict] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SingleStartedHub.bodies.append(body)
        if "commandId" not in body:
            status, answer = 400, {"success": False, "error": "commandId: This field is required."}
        elif body["commandId"] == "gone":
            status, answer = 404, {"success": False, "error": "command not found"}
        else:
            status, answer = 200, {"success": True, "cancelRequested": False}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def single_started_hub() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SingleStartedHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    SingleStartedHub.bodies = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_older_hub_gets_one_request_per_command(single_started_hub: str) -> None:
    accepted = HubClient(single_started_hub, "key").started_many([("1", 1), ("gone", 1), ("3", 2)])

    assert accepted == {"1": False, "3": False}
    assert [b.get("commandId", "list") for b in SingleStartedHub.bodies] == ["list", "1", "gone", "3"]
