"""The agent's hub client takes the environment's proxy and CA settings, as requests would."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from relay_agent.hub import HubClient


class RecordingProxy(http.server.BaseHTTPRequestHandler):
    """Answers every request itself, as a forward proxy would after fetching it, and records its target."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    seen: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        RecordingProxy.seen.append(self.path)
        body = json.dumps({"success": True, "cancelCommandIds": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RecordingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    RecordingProxy.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_requests_go_through_the_proxy_from_the_environment(monkeypatch, proxy) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    assert HubClient("http://hub.internal:8000", "key").heartbeat() == []

    assert RecordingProxy.seen == ["http://hub.internal:8000/relay/heartbeat"]


def test_no_proxy_is_honoured(monkeypatch, proxy) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    assert HubClient(proxy, "key").heartbeat() == []

    assert RecordingProxy.seen == ["/relay/heartbeat"]


def test_a_ca_bundle_from_the_environment_is_used(monkeypatch, tmp_path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    assert HubClient("https://hub.example", "key").session.verify == str(bundle)
