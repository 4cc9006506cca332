"""HTTP client for the hub's relay routes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from . import __version__
from .hub_http import BodyTooLarge, HTTPClient, TransportError


class HubError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HubUnavailable(HubError):
    """Connection failure, timeout, 5xx or 429: retry later with backoff."""


class HubRejected(HubError):
    """401 (bad or revoked key) or 403 (disabled relay)."""


class ExtensionsUnsupported(HubError):
    """The hub predates the long-poll extensions (404 on an extension route)."""


class HubRequestError(HubError):
    """Any other 4xx: this request will not succeed by repeating it."""


class NotARelayhub(HubError):
    """The server at the hub URL does not answer ``GET /relay/hello`` as a relayhub."""


SERVICE = "relayhub"


@dataclass
class HubExtensions:
    """Whether the hub has the long-poll extensions, as far as the agent has learned: None until a long-poll answers."""

    supported: bool | None = None
    hello_answered: bool = False

    @property
    def relayhub(self) -> bool:
        """The hub answered /relay/hello as a relayhub, or a long-poll showed its extensions."""
        return self.hello_answered or self.supported is True


@dataclass
class NextBatch:
    """An answer to a long-poll: the commands claimed, and whether config pushes or shared credentials wait."""

    commands: list[dict]
    config_pending: bool = False


class HubClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        pool_size: int = 16,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = (connect_timeout, read_timeout)
        self._api_key = api_key
        # The environment's CA bundle, read once, under the names requests read it by.
        self.ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
        headers = {
            "User-Agent": f"relay-agent/{__version__}",
            "Accept-Encoding": "gzip, deflate",
            "Accept": "application/json",
            "Connection": "keep-alive",
            "X-API-Key": api_key,
        }
        self.http = HTTPClient(self.base_url, headers, connect_timeout, pool_size, self.ca_bundle)

    def close(self) -> None:
        self.http.close()

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict | None = None,
        read_timeout: float | None = None,
        extension: bool = False,
        data: Any = None,
    ) -> tuple[int, dict]:
        # `extension`: the route has no id in it, so a 404 can only mean the hub lacks the route.
        # `data`: a raw body (a file, streamed) instead of the JSON `body`.
        if data is not None:
            headers = {"Content-Type": "application/octet-stream"}
        elif body is not None:
            headers = {"Content-Type": "application/json"}
            try:
                data = json.dumps(body, allow_nan=False).encode("utf-8")
            except ValueError:  # NaN or infinity: requests failed the request (InvalidJSONError) likewise
                raise HubUnavailable(f"{method} {path}: InvalidJSONError") from None
        else:
            headers = None
        try:
            response = self.http.request(method, path, params=params, body=data, headers=headers,
                                         read_timeout=read_timeout or self._timeout[1])
        except TransportError as exc:
            raise HubUnavailable(f"{method} {path}: {exc.kind}") from None
        status = response.status_code
        data = _json_object(response.content)
        error = str(data.get("error") or response.reason or "")
        if status >= 500 or status == 429:
            raise HubUnavailable(f"{method} {path}: HTTP {status} {error}".strip(), status)
        if status in (401, 403):
            raise HubRejected(f"{method} {path}: HTTP {status} {error}".strip(), status)
        if status == 404 and extension:
            raise ExtensionsUnsupported(f"{method} {path}: not supported by this hub", status)
        if status >= 400:
            raise HubRequestError(f"{method} {path}: HTTP {status} {error}".strip(), status)
        if 300 <= status < 400:  # not followed: the key goes to the hub URL's server only
            raise HubRequestError(f"{method} {path}: HTTP {status} redirect not followed", status)
        if response.content and not data:
            raise HubUnavailable(f"{method} {path}: HTTP {status} without a JSON object", status)
        return status, data

    def hello(self) -> None:
        """Check, without the key, that a relayhub answers at the hub URL; NotARelayhub when something else does.

        Another program on the hub's port (say the hub failed to start) must never receive the key.
        No redirect is followed: the server named by the hub URL is the one that gets the key.
        """
        path = "/relay/hello"
        try:
            response = self.http.request("GET", path, headers={"X-API-Key": None}, read_timeout=self._timeout[1])
        except TransportError as exc:
            raise HubUnavailable(f"GET {path}: {exc.kind}") from None
        status = response.status_code
        if status >= 500 or status == 429:
            raise HubUnavailable(f"GET {path}: HTTP {status}", status)
        data = _json(response.content)
        if status == 200 and isinstance(data, dict) and data.get("service") == SERVICE:
            return
        answer = f"HTTP {status}" + ("" if isinstance(data, dict) else " without a JSON object")
        raise NotARelayhub(f"GET {path} answered {answer}, not a relayhub", status)

    def download(self, path: str, max_bytes: int) -> bytes:
        """The bytes at a relay route (an agent release's wheel), with this relay's key; at most ``max_bytes``."""
        try:
            response = self.http.request("GET", path, read_timeout=120, max_body=max_bytes)
        except BodyTooLarge:
            raise HubRequestError(f"GET {path}: more than {max_bytes} bytes") from None
        except TransportError as exc:
            raise HubUnavailable(f"GET {path}: {exc.kind}") from None
        status = response.status_code
        if status >= 400 or status in (301, 302, 303, 307, 308):
            error = str(_json_object(response.content).get("error") or "")
            kind = HubUnavailable if status >= 500 or status == 429 else (
                HubRejected if status in (401, 403) else HubRequestError)
            raise kind(f"GET {path}: HTTP {status} {error}".strip(), status)
        return response.content

    def verify(self) -> dict:
        return self._request("POST", "/relay/verify", {"apiKey": self._api_key})[1]

    def list_commands(self) -> list[dict]:
        return list(self._request("GET", "/relay/commands")[1].get("commands") or [])

    def claim(self, command_id: str) -> dict | None:
        """The claimed command, or None when another relay won it or it is gone."""
        try:
            return self._request("POST", "/relay/commands/claim", {"commandId": command_id})[1].get("command")
        except HubRequestError as exc:
            if exc.status in (400, 404, 409):
                return None
            raise

    def next_commands(self, max_count: int, wait_ms: int, holding: list[str] | None = None) -> list[dict]:
        """Claim up to ``max_count``; ``holding`` are ids we have already, not to be handed to us again."""
        return self.next_batch(max_count, wait_ms, holding).commands

    def next_batch(self, max_count: int, wait_ms: int, holding: list[str] | None = None,
                   session: str | None = None) -> NextBatch:
        """`next_commands`, with what else the answer says (`configPending`); with a `session`, a command the claim
        started comes with `"started": true`."""
        data = self._request(
            "POST",
            "/relay/commands/next",
            {"max": max_count, "waitMs": wait_ms, **({"holding": holding} if holding else {}),
             **({"session": session} if session else {})},
            read_timeout=wait_ms / 1000 + 15,
            extension=True,
        )[1]
        return NextBatch(list(data.get("commands") or []), data.get("configPending") is True)

    def started(self, command_id: str, attempt: int | None) -> bool:
        data = self._request("POST", "/relay/commands/started", {"commandId": command_id, "attempt": attempt})[1]
        return bool(data.get("cancelRequested"))

    def started_many(self, commands: list[tuple[str, int | None]]) -> dict[str, bool]:
        """Announce commands about to run: for each the hub took, whether a cancel was asked already.

        Those left out are no longer ours (claimed again, timed out, not found).
        """
        if len(commands) == 1:
            [(command_id, attempt)] = commands
            try:
                return {command_id: self.started(command_id, attempt)}
            except HubRequestError:
                return {}
        body = {"commands": [{"commandId": command_id, "attempt": attempt} for command_id, attempt in commands]}
        try:
            answers = self._request("POST", "/relay/commands/started", body)[1].get("commands") or []
        except HubRequestError as exc:
            if exc.status != 400:
                raise
            # A hub that takes one command per request.
            return {key: value for item in commands for key, value in self.started_many([item]).items()}
        return {str(a.get("commandId")): bool(a.get("cancelRequested")) for a in answers if a.get("status") == 200}

    def output(self, command_id: str, attempt: int | None, chunks: list[dict]) -> bool:
        body = {"commandId": command_id, "attempt": attempt, "chunks": chunks}
        return bool(self._request("POST", "/relay/commands/output", body)[1].get("cancelRequested"))

    def upload_full_output(self, command_id: str, attempt: int, stream: str, body: Any, sha256: str) -> None:
        """Extension: the whole of one stream, streamed from the file `body`; the hub checks it against `sha256`."""
        params = {"commandId": command_id, "attempt": attempt, "stream": stream, "sha256": sha256}
        # The hub answers once it has stored the body, which may take a while for a large one.
        self._request("POST", "/relay/commands/full-output", params=params, data=body, read_timeout=120)

    def post_result(self, body: dict) -> int:
        """HTTP status of the hub's answer: 200, or 400/404/409 for a result it will never take."""
        try:
            return self._request("POST", "/relay/commands/result", body)[0]
        except HubRequestError as exc:
            if exc.status in (400, 404, 409, 413):
                return exc.status
            raise

    def post_results(self, bodies: list[dict]) -> list[dict]:
        return list(
            self._request("POST", "/relay/commands/results", {"results": bodies}, extension=True)[1].get("results")
            or []
        )

    def heartbeat(self) -> list[str]:
        return [str(cid) for cid in self._request("POST", "/relay/heartbeat", {})[1].get("cancelCommandIds") or []]

    def report_status(self, body: dict) -> dict:
        return self._request("POST", "/relay/status", body)[1]

    def config_pushes(self, relay_id: str) -> list[dict]:
        return list(
            self._request("GET", "/relay/config-pushes", params={"relayId": relay_id})[1].get("configPushes") or []
        )

    def ack_config_push(self, push_id: str, success: bool, error_message: str | None = None) -> None:
        body: dict[str, Any] = {"pushId": push_id, "success": success}
        if error_message:
            body["errorMessage"] = error_message
        self._request("POST", "/relay/config-pushes/ack", body)

    def shared_credentials(self, relay_id: str) -> list[dict]:
        return list(
            self._request("GET", "/relay/shared-credentials", params={"relayId": relay_id})[1].get("credentials") or []
        )


def _json(content: bytes) -> Any:
    """The decoded JSON answer, or None for an empty or non-JSON one."""
    try:
        return json.loads(content)
    except ValueError:
        return None


def _json_object(content: bytes) -> dict:
    data = _json(content)
    return data if isinstance(data, dict) else {}
