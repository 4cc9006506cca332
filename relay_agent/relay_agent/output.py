"""What local and SSH execution share: the result type and capped, streamed output capture."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

DEFAULT_MAX_OUTPUT = 1024 * 1024

Stream = Literal["stdout", "stderr"]
Status = Literal["completed", "failed", "timeout", "cancelled"]
# (stream, offset, data): offset counts the characters of that stream emitted before `data`.
OutputCallback = Callable[[str, int, str], None]


@dataclass
class ExecResult:
    status: Status
    exit_code: int | None = None
    output: str = ""
    stderr: str = ""
    duration_ms: int = 0
    error: str | None = None
    output_truncated: bool = False

    @property
    def success(self) -> bool:
        return self.status == "completed" and self.exit_code == 0

    @classmethod
    def refused(cls, error: str) -> ExecResult:
        return cls(status="failed", error=error)


class StreamCapture:
    """Decodes one stream incrementally, keeps at most `limit` characters and emits what it keeps."""

    def __init__(self, stream: Stream, limit: int, on_output: OutputCallback | None) -> None:
        self.stream = stream
        self.limit = limit
        self.truncated = False
        self._on_output = on_output
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._size = 0

    def feed(self, data: bytes, final: bool = False) -> None:
        self._keep(self._decoder.decode(data, final))

    def close(self) -> None:
        self.feed(b"", final=True)

    def _keep(self, text: str) -> None:
        if not text:
            return
        room = self.limit - self._size
        if len(text) > room:
            # Output past the cap is neither stored nor streamed, so offsets always match what the hub holds.
            text = text[:room]
            self.truncated = True
        if not text:
            return
        offset = self._size
        self._parts.append(text)
        self._size += len(text)
        if self._on_output is not None:
            self._on_output(self.stream, offset, text)

    @property
    def text(self) -> str:
        return "".join(self._parts)


def status_for_exit(exit_code: int) -> Status:
    return "completed" if exit_code == 0 else "failed"
