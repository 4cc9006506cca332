"""What local and SSH execution share: the result type and capped, streamed output capture."""

from __future__ import annotations

import codecs
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .full_output import spool_for

DEFAULT_MAX_OUTPUT = 1024 * 1024  # bytes per stream
DEFAULT_HEAD_FRACTION = 0.25  # of the cap kept from the start; the rest is the tail

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
    # A package command's outcome: {"manager", "packages": [{name, action, oldVersion, newVersion}]}.
    packages: dict | None = None

    @property
    def success(self) -> bool:
        return self.status == "completed" and self.exit_code == 0

    @classmethod
    def refused(cls, error: str) -> ExecResult:
        return cls(status="failed", error=error)


class StreamCapture:
    """Decodes one stream incrementally and keeps its head and its tail within `limit` bytes of UTF-8.

    The first `head` bytes are kept and emitted as they come (the live view). After them a rolling
    buffer keeps the last `limit - head` bytes, so memory stays bounded however much the command
    writes. If anything had to be dropped, `text` is the head, a marker saying how many bytes were
    skipped, and the tail; otherwise it is the whole stream. Cuts fall on character boundaries.
    When the hub asked for the full output, the raw bytes also go to a spool (`full_output.py`).
    """

    def __init__(self, stream: Stream, limit: int, on_output: OutputCallback | None, head: int | None = None) -> None:
        self.stream = stream
        self.limit = limit
        self.head_limit = head_bytes(limit, DEFAULT_HEAD_FRACTION if head is None else head)
        self._on_output = on_output
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._head: list[str] = []
        self._head_chars = 0
        self._head_bytes = 0
        self._head_full = False
        self._tail: deque[bytes] = deque()
        self._tail_bytes = 0
        self._tail_limit = limit - self.head_limit
        self._skipped = 0
        self._spool = spool_for(stream, limit)

    def feed(self, data: bytes, final: bool = False) -> None:
        if self._spool is not None and data:
            self._spool.write(data)
        self._keep(self._decoder.decode(data, final))

    def close(self) -> None:
        self.feed(b"", final=True)

    def _keep(self, text: str) -> None:
        if not text:
            return
        if self._head_full:
            self._push_tail(text.encode("utf-8"))
            return
        encoded = text.encode("utf-8")
        room = self.head_limit - self._head_bytes
        if len(encoded) <= room:
            self._emit(text, len(encoded))
            return
        cut = char_boundary(encoded, room)
        if cut:
            self._emit(encoded[:cut].decode("utf-8"), cut)
        # Only the head is streamed: what follows may yet be skipped, and the hub must never show
        # live output that the final copy does not have at the same offset.
        self._head_full = True
        self._tail_limit = self.limit - self._head_bytes
        self._push_tail(encoded[cut:])

    def _emit(self, text: str, size: int) -> None:
        offset = self._head_chars
        self._head.append(text)
        self._head_chars += len(text)
        self._head_bytes += size
        if self._on_output is not None:
            self._on_output(self.stream, offset, text)

    def _push_tail(self, data: bytes) -> None:
        if not data:
            return
        self._tail.append(data)
        self._tail_bytes += len(data)
        excess = self._tail_bytes - self._tail_limit
        while excess > 0:
            first = self._tail[0]
            if len(first) <= excess:
                self._tail.popleft()
                dropped = len(first)
            else:
                self._tail[0] = first[excess:]
                dropped = excess
            self._tail_bytes -= dropped
            self._skipped += dropped
            excess -= dropped

    @property
    def truncated(self) -> bool:
        return self._skipped > 0

    @property
    def skipped(self) -> int:
        """Bytes dropped between the head and the tail (a partial character at the cut included)."""
        if not self._skipped:
            return 0
        return self._skipped + (len(self._tail[0]) - len(_lstrip_continuation(self._tail[0])) if self._tail else 0)

    @property
    def text(self) -> str:
        head = "".join(self._head)
        tail = b"".join(self._tail)
        if not self._skipped:
            return head + tail.decode("utf-8")
        return head + skip_marker(self.skipped, self.limit) + _lstrip_continuation(tail).decode("utf-8")


def skip_marker(skipped: int, cap: int) -> str:
    """The line between head and tail; the hub parses it (commands/output.py), keep both in step."""
    return f"\n[... {skipped} bytes skipped by relayhub: output over the {cap}-byte cap ...]\n"


MARKER = re.compile(r"\n\[\.\.\. (\d+) bytes skipped by relayhub: output over the (\d+)-byte cap \.\.\.\]\n")


def halve(text: str) -> str:
    """About half the bytes of a captured stream, still its head and its tail, the marker counting all skipped.

    For a result the hub refused as too large: cutting the end off would lose the tail, where errors are.
    """
    match = MARKER.search(text)
    if match:
        head, skipped, cap, tail = text[:match.start()], int(match.group(1)), int(match.group(2)), text[match.end():]
    else:
        head, skipped, tail = text, 0, ""
        cap = len(text.encode("utf-8", "surrogatepass"))
    head_b, tail_b = head.encode("utf-8", "surrogatepass"), tail.encode("utf-8", "surrogatepass")
    if not match:
        # One run of text: a quarter of it from each end.
        head_b, tail_b = head_b[: len(head_b) // 2], head_b[len(head_b) // 2:]
    cut = char_boundary(head_b, len(head_b) // 2)
    start = len(tail_b) - len(tail_b) // 2
    start += len(tail_b[start:]) - len(_lstrip_continuation(tail_b[start:]))
    skipped += len(head_b) - cut + start
    halved = (head_b[:cut].decode("utf-8", "surrogatepass") + skip_marker(skipped, cap)
              + tail_b[start:].decode("utf-8", "surrogatepass"))
    return halved if len(halved) < len(text) else ""  # too short to halve: a marker alone would not shrink it


def head_bytes(limit: int, head: float | int) -> int:
    """The head's share of `limit`: a float is a fraction of it, an int a byte count."""
    if isinstance(head, float):
        return max(0, min(limit, int(limit * head)))
    return max(0, min(limit, head))


def parse_head(text: str) -> float | int:
    """`0.25` (with a decimal point: a fraction of the cap) or `4096` (bytes)."""
    if any(c in text for c in ".eE"):
        value = float(text)
        if not 0 <= value <= 1:
            raise ValueError(f"a fraction must be between 0 and 1, not {text}")
        return value
    count = int(text)
    if count < 0:
        raise ValueError(f"a byte count must not be negative, not {text}")
    return count


def char_boundary(encoded: bytes, index: int) -> int:
    """The largest cut at or before `index` that does not split a UTF-8 character."""
    index = min(index, len(encoded))
    while 0 < index < len(encoded) and encoded[index] & 0xC0 == 0x80:
        index -= 1
    return index


def _lstrip_continuation(data: bytes) -> bytes:
    start = 0
    while start < len(data) and data[start] & 0xC0 == 0x80:
        start += 1
    return data[start:]


def status_for_exit(exit_code: int) -> Status:
    return "completed" if exit_code == 0 else "failed"
