"""The command line an SSH channel runs, and the pid it reports back.

The remote login shell runs our line; it is the session leader sshd created with setsid(), so its
pid is the process group we kill on timeout or cancel. It reports that pid on the first stderr line.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from .output import StreamCapture

PID_MARKER = b"__relay_agent_pgid="


class PidMarkerReader:
    """Takes the pid line off the front of stderr and passes the rest through."""

    def __init__(self, capture: StreamCapture) -> None:
        self.capture = capture
        self.pgid: int | None = None
        self._head: bytes | None = b""

    def feed(self, data: bytes) -> None:
        if self._head is None:
            self.capture.feed(data)
            return
        self._head += data
        line, newline, rest = self._head.partition(b"\n")
        if newline and line.startswith(PID_MARKER) and line[len(PID_MARKER) :].isdigit():
            self.pgid = int(line[len(PID_MARKER) :])
        elif newline or len(self._head) > 256 or not PID_MARKER.startswith(self._head[: len(PID_MARKER)]):
            rest = self._head
        else:
            return
        self._head = None
        if rest:
            self.capture.feed(rest)

    def close(self) -> None:
        if self._head:
            self.capture.feed(self._head)
        self._head = None
        self.capture.close()


def remote_line(command: str | Sequence[str]) -> str:
    """The line the remote login shell runs: report its pid, then exec the command in its place.

    Shell text is exec'd through /bin/sh; an argument list (what an allow-list allowed) is exec'd
    as it is, every argument quoted, so no shell interprets any of it.
    """
    program = f"/bin/sh -c {shlex.quote(command)}" if isinstance(command, str) else shlex.join(command)
    return f'echo "{PID_MARKER.decode()}$$" >&2; exec {program}'
