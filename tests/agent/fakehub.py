"""An in-memory stand-in for the hub's relay routes, to drive a real Agent in tests.

It follows the wire protocol the agent is written against; `extensions=False` makes it an
original hub (404 on the extension routes). It is no substitute for the hub's own tests.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class FakeHub:
    api_key: str = "rly_test_key"
    extensions: bool = True
    relay_id: str = "relay-1"
    commands: dict[str, dict] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)
    result_posts: list[dict] = field(default_factory=list)
    chunks: list[dict] = field(default_factory=list)
    status_reports: list[dict] = field(default_factory=list)
    config_pushes: list[dict] = field(default_factory=list)
    acks: list[dict] = field(default_factory=list)
    shared_credentials: list[dict] = field(default_factory=list)
    cancel_ids: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    client_ports: set[int] = field(default_factory=set)
    unavailable_results: int = 0  # answer this many result posts with 503
    down: bool = False  # answer everything with 503

    def __post_init__(self) -> None:
        self.lock = threading.Condition()
        self._next_id = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def queue(self, command: str, target_type: str = "local", timeout_ms: int = 10_000, **extra: Any) -> str:
        with self.lock:
            self._next_id += 1
            command_id = f"cmd{self._next_id}"
            self.commands[command_id] = {
                "_id": command_id,
                "command": command,
                "targetType": target_type,
                "timeoutMs": timeout_ms,
                "createdAt": int(time.time() * 1000),
                "status": "pending",
                "attempt": 0,
                **extra,
            }
            self.lock.notify_all()
        return command_id

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.lock.wait(min(remaining, 0.05))
        return True

    def wait_result(self, command_id: str, timeout: float = 10.0) -> dict:
        assert self.wait_for(lambda: command_id in self.results, timeout), f"no result for {command_id}"
        return self.results[command_id]

    # -- route handlers: (status, body) ---------------------------------------------------------------

    def _wire(self, cmd: dict) -> dict:
        keys = ("_id", "command", "targetType", "targetHost", "targetPort", "targetUsername", "timeoutMs", "createdAt")
        item = {k: cmd[k] for k in keys if cmd.get(k) is not None}
        if self.extensions:
            item["attempt"] = cmd["attempt"]
        return item

    def _claim(self, cmd: dict) -> None:
        cmd["status"] = "claimed"
        cmd["attempt"] += 1

    def handle(self, method: str, path: str, query: dict, body: Any) -> tuple[int, dict]:
        route = path.rstrip("/")
        ext_routes = ("/relay/commands/next", "/relay/commands/started", "/relay/commands/output", "/relay/commands/results")
        if self.down:
            return 503, {"error": "down"}
        if route in ext_routes and not self.extensions:
            return 404, {}
        with self.lock:
            if route == "/relay/verify":
                if (body or {}).get("apiKey") != self.api_key:
                    return 401, {"valid": False, "error": "invalid key"}
                return 200, {"valid": True, "assignmentId": self.relay_id, "machineId": "m1", "name": "test relay"}
            if route == "/relay/commands" and method == "GET":
                pending = [self._wire(c) for c in self.commands.values() if c["status"] == "pending"]
                return 200, {"commands": pending[:10]}
            if route == "/relay/commands/claim":
                cmd = self.commands.get(body.get("commandId"))
                if cmd is None:
                    return 404, {"success": False, "error": "not found"}
                if cmd["status"] != "pending":
                    return 400, {"success": False, "error": "not pending"}
                self._claim(cmd)
                return 200, {"success": True, "command": self._wire(cmd)}
            if route == "/relay/commands/next":
                deadline = time.monotonic() + min(body.get("waitMs", 0), 30_000) / 1000
                while True:
                    pending = [c for c in self.commands.values() if c["status"] == "pending"][: body.get("max", 1)]
                    if pending or time.monotonic() >= deadline:
                        break
                    self.lock.wait(min(0.05, max(0.0, deadline - time.monotonic())))
                for cmd in pending:
                    self._claim(cmd)
                return 200, {"commands": [self._wire(c) for c in pending]}
            if route == "/relay/commands/started":
                cmd = self.commands.get(body.get("commandId"))
                if cmd is None or cmd["status"] not in ("claimed", "executing"):
                    return 404, {"success": False, "error": "not claimed"}
                cmd["status"] = "executing"
                return 200, {"success": True, "cancelRequested": cmd["_id"] in self.cancel_ids}
            if route == "/relay/commands/output":
                self.chunks.extend({"commandId": body["commandId"], **chunk} for chunk in body["chunks"])
                self.lock.notify_all()
                return 200, {"success": True, "cancelRequested": body["commandId"] in self.cancel_ids}
            if route == "/relay/commands/result":
                return self._result(body)
            if route == "/relay/commands/results":
                answers = []
                for item in body["results"]:
                    status, answer = self._result(item)
                    answers.append({"commandId": item["commandId"], "status": status, **({"error": answer["error"]} if "error" in answer else {})})
                return 200, {"results": answers}
            if route == "/relay/heartbeat":
                return 200, {"success": True, "cancelCommandIds": sorted(self.cancel_ids)}
            if route == "/relay/status":
                self.status_reports.append(body)
                self.lock.notify_all()
                pending = sum(1 for p in self.config_pushes if p["status"] == "pending")
                return 200, {"success": True, "pendingConfigPushes": pending, "sharedCredentialsCount": len(self.shared_credentials)}
            if route == "/relay/config-pushes":
                pending = [p for p in self.config_pushes if p["status"] == "pending"]
                for push in pending:
                    push["status"] = "sent"
                return 200, {"configPushes": [{k: p[k] for k in ("_id", "pushType", "payload", "createdAt")} for p in pending]}
            if route == "/relay/config-pushes/ack":
                self.acks.append(body)
                self.lock.notify_all()
                return 200, {"success": True}
            if route == "/relay/shared-credentials":
                return 200, {"credentials": self.shared_credentials}
        return 404, {"error": "no such route"}

    def _result(self, body: dict) -> tuple[int, dict]:
        self.result_posts.append(body)
        if self.unavailable_results > 0:
            self.unavailable_results -= 1
            raise _Unavailable()
        cmd = self.commands.get(body.get("commandId"))
        if cmd is None or cmd["status"] == "pending":
            return 404, {"success": False, "error": "not claimed by caller"}
        if self.extensions and body.get("attempt") != cmd["attempt"]:
            return 409, {"success": False, "error": "stale attempt"}
        if cmd["_id"] in self.results:
            same = self.results[cmd["_id"]] == body
            return (200, {"success": True}) if same else (409, {"success": False, "error": "already finished"})
        self.results[cmd["_id"]] = body
        cmd["status"] = body.get("status") or ("completed" if body["success"] else "failed")
        self.lock.notify_all()
        return 200, {"success": True}


class _Unavailable(Exception):
    pass


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without this, Nagle plus delayed ACKs add ~40 ms a request.
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            hub.requests.append(f"{method} {url.path}")
            hub.client_ports.add(self.client_address[1])
            if url.path.rstrip("/") != "/relay/verify" and self.headers.get("X-API-Key") != hub.api_key:
                status, body = 401, {"success": False, "error": "invalid key"}
            else:
                try:
                    status, body = hub.handle(method, url.path, parse_qs(url.query), json.loads(raw) if raw else None)
                except _Unavailable:
                    status, body = 503, {"error": "unavailable"}
            data = json.dumps(body).encode() if body or status != 404 else b"Not Found"
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if body or status != 404 else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
