"""Keeping a command's full output when the hub asks (`fullOutput` in a `next` answer), and uploading it.

The hub keeps at most its cap of each stream (head and tail, `output.py`). A hub that keeps full outputs
adds `fullOutput: {maxBytes, overBytes}` to the commands it hands out. While such a command runs, each of
its `StreamCapture`s also writes the raw bytes to a spool: memory up to the cap, a private temporary file
beyond it. After the command, every stream longer than the cap (the hub's `overBytes` or our own
`--max-output`, whichever is smaller) and no longer than `maxBytes` is uploaded to
`POST /relay/commands/full-output`, before the result is reported. A failed upload is logged and given up
after a few tries: the result, with its capped copy, is never held back for it.

The captures are made deep inside the executors, so the claimer hands them the keeper through a context
variable (`keeping`) set around the run in the command's own thread, rather than through every signature.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .hub import HubClient, HubError, HubUnavailable
from .logs import AGENT_LOGGER, get_logger

log = get_logger(AGENT_LOGGER)

UPLOAD_TRIES = 3
UPLOAD_RETRY_S = (1.0, 3.0)


class StreamSpool:
    """One stream's bytes as the command wrote them: memory up to `threshold`, then a temporary file."""

    def __init__(self, stream: str, threshold: int, max_bytes: int) -> None:
        self.stream = stream
        self.threshold = threshold
        self.max_bytes = max_bytes
        self.size = 0
        self.dropped: str | None = None  # why the copy is not kept, once it is not
        import hashlib  # on use: hashlib loads OpenSSL's libcrypto, megabytes an idle agent need not hold
        import tempfile

        self._digest = hashlib.sha256()
        # mkstemp's 0600, unlinked at once: nothing is left behind, whatever happens to the agent.
        self._file = tempfile.SpooledTemporaryFile(max_size=threshold)  # noqa: SIM115 - closed by close()

    def write(self, data: bytes) -> None:
        """Never raises: the command's run must not fail for its spool."""
        self.size += len(data)
        if self.dropped:
            return
        if self.size > self.max_bytes:
            self._drop(f"over the hub's limit of {self.max_bytes} bytes")
            return
        try:
            self._file.write(data)
        except OSError as exc:  # a full disk, say
            self._drop(f"spooling failed: {exc}")
            return
        self._digest.update(data)

    def _drop(self, reason: str) -> None:
        self.dropped = reason
        self._file.close()

    @property
    def wanted(self) -> bool:
        """Longer than the cap: the hub has only its head and tail."""
        return self.dropped is None and self.size > self.threshold

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def rewound(self):  # noqa: ANN201 - a binary file object
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        self._file.close()


class FullOutput:
    """The spools of one command's streams, and their upload once it has ended."""

    def __init__(self, command_id: str, attempt: int, max_bytes: int, over_bytes: int) -> None:
        self.command_id = command_id
        self.attempt = attempt
        self.max_bytes = max_bytes
        self.over_bytes = over_bytes
        self.spools: dict[str, StreamSpool] = {}

    def spool(self, stream: str, capture_limit: int) -> StreamSpool:
        if stream in self.spools:  # a second capture of the same stream replaces the first
            self.spools[stream].close()
        self.spools[stream] = StreamSpool(stream, min(self.over_bytes, capture_limit), self.max_bytes)
        return self.spools[stream]

    def upload(self, hub: HubClient) -> None:
        """Upload each stream over the cap; never raises, and gives up after `UPLOAD_TRIES`."""
        for stream, spool in self.spools.items():
            if spool.dropped and spool.size > spool.threshold:
                log.warning("full output not kept", commandId=self.command_id, stream=stream, bytes=spool.size,
                            reason=spool.dropped)
            elif spool.wanted:
                self._upload(hub, spool)

    def _upload(self, hub: HubClient, spool: StreamSpool) -> None:
        for attempt in range(1, UPLOAD_TRIES + 1):
            try:
                hub.upload_full_output(self.command_id, self.attempt, spool.stream, spool.rewound(), spool.sha256)
            except HubUnavailable as exc:
                if attempt < UPLOAD_TRIES:
                    time.sleep(UPLOAD_RETRY_S[attempt - 1])
                    continue
                error = str(exc)
            except HubError as exc:  # refused: it will not work any better the next time
                error = str(exc)
            except Exception as exc:  # reading our own spool failed; the result goes on all the same
                error = f"{type(exc).__name__}: {exc}"
            else:
                log.info("full output uploaded", commandId=self.command_id, stream=spool.stream, bytes=spool.size)
                return
            log.warning("full output upload failed; the hub keeps the capped copy", commandId=self.command_id,
                        stream=spool.stream, bytes=spool.size, error=error)
            return

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()


def requested(command: dict, attempt: int | None) -> FullOutput | None:
    """A keeper when the hub asked for the full output (it always gives an attempt with it), else None."""
    asked = command.get("fullOutput")
    if not isinstance(asked, dict) or attempt is None:
        return None
    max_bytes, over_bytes = asked.get("maxBytes"), asked.get("overBytes")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (max_bytes, over_bytes)):
        return None
    return FullOutput(str(command.get("_id")), attempt, max_bytes, over_bytes)


_current: ContextVar[FullOutput | None] = ContextVar("relay_agent_full_output", default=None)


@contextmanager
def keeping(keeper: FullOutput | None) -> Iterator[None]:
    """Captures made in this thread meanwhile spool their stream into `keeper` (nothing when None)."""
    token = _current.set(keeper)
    try:
        yield
    finally:
        _current.reset(token)


def spool_for(stream: str, capture_limit: int) -> StreamSpool | None:
    """The spool a new capture writes to, when its command's full output is kept."""
    keeper = _current.get()
    return keeper.spool(stream, capture_limit) if keeper is not None else None
