"""Structured key=value logging to stderr that never prints registered secrets."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

# One logger name for the agent's own events (claiming, running, results, status, pushes), whichever module emits
# them: log filters and alerts match on `logger=relay_agent.agent`.
AGENT_LOGGER = "relay_agent.agent"

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask this value in every log line; a defence in depth behind not logging it at all."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def _redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _format_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    return text


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields.update((k, v) for k, v in (getattr(record, "fields", {}) or {}).items() if v is not None)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields["exc"] = f"{type(exc).__name__}: {exc}"
        line = " ".join(f"{key}={_format_value(value)}" for key, value in fields.items())
        return _redact(line)


class EventLogger:
    """`log.info("command finished", commandId=..., status=...)` instead of formatted strings."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _log(self, level: int, event: str, exc_info: bool, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"fields": fields}, exc_info=exc_info)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, False, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, False, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, False, fields)

    def error(self, event: str, exc_info: bool = False, **fields: Any) -> None:
        self._log(logging.ERROR, event, exc_info, fields)


def get_logger(name: str) -> EventLogger:
    return EventLogger(name)


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger("relay_agent")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # paramiko and urllib3 log at INFO/DEBUG with details we do not control; keep them quiet, in our format.
    for name in ("paramiko", "urllib3"):
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.setLevel(logging.WARNING)
        library.propagate = False
