"""Configuration pushed by the hub, validated, persisted and enforced."""

from __future__ import annotations

import base64
import binascii
import json
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import transport
from .allowlist import REFUSED as COMMAND_REFUSED
from .allowlist import CommandRefused, Pattern, authorize, parse_entries
from .files import ensure_private_dir, write_private
from .logs import get_logger
from .run_options import USER_NAME
from .store import CREDENTIAL_TYPES, CredentialStore, CredentialStoreError

__all__ = ["COMMAND_REFUSED", "AgentConfig", "CommandRefused", "ConfigError", "SSHTarget"]

log = get_logger(__name__)

PUSH_TYPES = ("credential", "ssh_targets", "allowed_commands", "metrics_interval", "run_as")
MIN_METRICS_INTERVAL_MS = 1000
MAX_METRICS_INTERVAL_MS = 24 * 3600 * 1000


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class SSHTarget:
    host: str
    port: int | None = None  # None: any port of that host
    host_key: str | None = None

    def matches(self, host: str, port: int) -> bool:
        return self.host == host and (self.port is None or self.port == port)

    def to_json(self) -> dict:
        return {"host": self.host, "port": self.port, "hostKey": self.host_key}


def parse_host_key(value: Any) -> str:
    """Check an OpenSSH public key line ("ssh-ed25519 AAAA... [comment]") and return "type base64"."""
    if not isinstance(value, str) or len(value.split()) < 2:
        raise ConfigError("hostKey must look like 'ssh-ed25519 AAAA...'")
    key_type, data = value.split()[:2]
    try:
        blob = base64.b64decode(data, validate=True)
        (name_len,) = struct.unpack(">I", blob[:4])
        embedded = blob[4 : 4 + name_len].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        raise ConfigError("hostKey is not valid base64 key data") from None
    if embedded != key_type:
        raise ConfigError(f"hostKey type {key_type!r} does not match its key data ({embedded!r})")
    return f"{key_type} {data}"


def _parse_port(value: Any) -> int:
    # isdigit() alone admits '²' (int() refuses it) and Arabic-Indic digits (int() reads them).
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ConfigError(f"invalid port {value!r}")
    return value


def parse_target(item: Any) -> SSHTarget:
    if isinstance(item, str):
        text = item.strip()
        port: int | None
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = _parse_port(rest[1:]) if rest.startswith(":") else None
        elif text.count(":") == 1:
            host, port_text = text.split(":")
            port = _parse_port(port_text)
        else:
            host, port = text, None
        if not host:
            raise ConfigError(f"invalid ssh target {item!r}")
        return SSHTarget(host, port)
    if isinstance(item, dict):
        name = item.get("host")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("each ssh target needs a host")
        port = _parse_port(item["port"]) if item.get("port") is not None else None
        host_key = parse_host_key(item["hostKey"]) if item.get("hostKey") else None
        return SSHTarget(name.strip(), port, host_key)
    raise ConfigError(f"invalid ssh target {item!r}")


class AgentConfig:
    FILE = "config.json"

    def __init__(
        self, store_dir: Path | str, store: CredentialStore | None = None, transport_secret: str | None = None
    ) -> None:
        self._path = ensure_private_dir(Path(store_dir)) / self.FILE
        self._store = store
        self._transport_secret = transport_secret
        self._lock = threading.Lock()
        self.allowed_commands: list[str] | None = None
        self._command_patterns: list[Pattern] = []
        self.ssh_targets: list[SSHTarget] | None = None
        self.metrics_interval_ms: int | None = None
        # Users a command may run as (through sudo); none until a run_as push names some.
        self.run_as_users: list[str] | None = None
        self._load()

    def apply(self, push_type: str, payload: str | dict) -> None:
        """Validate and apply one push; raises ConfigError (to be acked as failed) and changes nothing then."""
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"payload is not valid JSON: {exc.msg}") from None
        if not isinstance(payload, dict):
            raise ConfigError("payload must be a JSON object")
        if push_type == "allowed_commands":
            commands = payload.get("commands")
            if not isinstance(commands, list) or not all(isinstance(c, str) and c for c in commands):
                raise ConfigError("allowed_commands needs commands: a list of non-empty strings")
            try:
                patterns = parse_entries(commands)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            with self._lock:
                self.allowed_commands, self._command_patterns = list(commands), patterns
                self._save()
        elif push_type == "ssh_targets":
            targets = payload.get("targets")
            if not isinstance(targets, list):
                raise ConfigError("ssh_targets needs targets: a list")
            parsed = [parse_target(item) for item in targets]
            with self._lock:
                self.ssh_targets = parsed
                self._save()
        elif push_type == "metrics_interval":
            interval = payload.get("intervalMs")
            if isinstance(interval, float) and interval.is_integer():
                interval = int(interval)
            if not isinstance(interval, int) or isinstance(interval, bool):
                raise ConfigError("metrics_interval needs intervalMs: an integer")
            if not MIN_METRICS_INTERVAL_MS <= interval <= MAX_METRICS_INTERVAL_MS:
                raise ConfigError(f"intervalMs must be between {MIN_METRICS_INTERVAL_MS} and {MAX_METRICS_INTERVAL_MS}")
            with self._lock:
                self.metrics_interval_ms = interval
                self._save()
        elif push_type == "run_as":
            users = payload.get("users")
            if not isinstance(users, list) or not all(isinstance(u, str) and USER_NAME.match(u) for u in users):
                raise ConfigError("run_as needs users: a list of user names")
            with self._lock:
                self.run_as_users = list(users)
                self._save()
        elif push_type == "credential":
            self._apply_credential(payload)
        else:
            raise ConfigError(f"unknown push type {push_type!r}")

    def _apply_credential(self, payload: dict) -> None:
        name, credential_type = payload.get("name"), payload.get("credentialType")
        target_host, username = payload.get("targetHost"), payload.get("username")
        encrypted = payload.get("encryptedValue")
        if not isinstance(name, str) or not name:
            raise ConfigError("credential needs a name")
        if credential_type not in CREDENTIAL_TYPES:
            raise ConfigError(f"credentialType must be one of {', '.join(CREDENTIAL_TYPES)}")
        if not isinstance(encrypted, str) or not encrypted:
            raise ConfigError("credential needs an encryptedValue")
        for label, value in (("targetHost", target_host), ("username", username)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{label} must be a string")
        if self._store is None:
            raise ConfigError("no credential store")
        try:
            value = transport.decrypt(encrypted, self._transport_secret or "")
            self._store.put(name, credential_type, value, target_host, username, storage_mode="shared")
        except (transport.TransportDecryptError, CredentialStoreError) as exc:
            raise ConfigError(str(exc)) from None

    def authorize_command(self, command: str) -> list[str] | None:
        """How the command may run: None through `sh -c` (no allow-list), else the arguments to run without a shell.

        Raises CommandRefused, whose text is the error to fail the command with, when it must not run.
        """
        with self._lock:
            allowed, patterns = self.allowed_commands, self._command_patterns
        if allowed is None:
            return None
        return authorize(command, patterns)

    def check_ssh_target(self, host: str, port: int) -> str | None:
        targets = self.ssh_targets
        if targets is None or any(t.matches(host, port) for t in targets):
            return None
        return f"ssh target {host}:{port} not allowed by ssh_targets policy"

    def pinned_host_keys(self, host: str, port: int) -> list[str]:
        return [t.host_key for t in self.ssh_targets or () if t.host_key and t.matches(host, port)]

    def _load(self) -> None:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return
        except ValueError:
            data = None
        allowed = data.get("allowedCommands") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not (
            allowed is None or isinstance(allowed, list) and all(isinstance(c, str) for c in allowed)
        ):
            # Starting without the pushed policy would silently allow everything; refuse instead.
            raise ConfigError(f"{self._path} is corrupt; delete it to start over and re-push the configuration")
        self.allowed_commands = allowed
        for index, entry in enumerate(self.allowed_commands or ()):
            try:
                self._command_patterns += parse_entries([entry])
            except ValueError as exc:
                # Saved before entries were checked: it can never match, so the list only gets stricter.
                log.warning("allowed_commands entry ignored", entry=index, error=str(exc).partition(": ")[2])
        targets = data.get("sshTargets")
        self.ssh_targets = None if targets is None else [parse_target(t) for t in targets]
        self.metrics_interval_ms = data.get("metricsIntervalMs")
        users = data.get("runAsUsers")
        self.run_as_users = [u for u in users if isinstance(u, str) and USER_NAME.match(u)] \
            if isinstance(users, list) else None

    def _save(self) -> None:
        data = {
            "allowedCommands": self.allowed_commands,
            "sshTargets": None if self.ssh_targets is None else [t.to_json() for t in self.ssh_targets],
            "metricsIntervalMs": self.metrics_interval_ms,
            "runAsUsers": self.run_as_users,
        }
        write_private(self._path, json.dumps(data, indent=2).encode())
