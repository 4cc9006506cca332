"""Ships one running command's output chunks to the hub in batches, and reports the hub's cancel requests."""

from __future__ import annotations

import threading
import time

from .backoff import Backoff
from .hub import HubClient, HubError, HubRequestError
from .logs import get_logger

log = get_logger(__name__)

MAX_POST_CHARS = 512 * 1024
MIN_POST_CHARS = 4 * 1024


class OutputStreamer:
    """`add` is the executor's output callback; a thread posts what accumulated every `interval` seconds."""

    def __init__(
        self,
        hub: HubClient,
        command_id: str,
        attempt: int | None,
        cancel: threading.Event,
        interval: float = 0.2,
        enabled: bool = True,
        announced: bool = False,
    ) -> None:
        self.hub = hub
        self.command_id = command_id
        self.attempt = attempt
        self.cancel = cancel
        self.interval = interval
        self.enabled = enabled
        self.announced = announced
        self.claim_lost = False
        self._pending: list[dict] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._backoff = Backoff(base=0.5, cap=10.0)
        self._retry_at = 0.0
        self._post_chars = MAX_POST_CHARS
        self._thread = threading.Thread(target=self._run, name=f"output-{command_id}", daemon=True)

    def start(self) -> None:
        # An announced command needs the thread only once it has output: most short ones never do.
        if self.enabled and not self.announced:
            self._thread.start()

    def add(self, stream: str, offset: int, data: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._thread.ident is None and not self._closed.is_set():
                self._thread.start()
            last = self._pending[-1] if self._pending else None
            if (
                last
                and last["stream"] == stream
                and last["offset"] + len(last["data"]) == offset
                and len(last["data"]) < MAX_POST_CHARS
            ):
                last["data"] += data
            else:
                self._pending.append({"stream": stream, "offset": offset, "data": data})

    def close(self) -> None:
        """Stop after one last flush, so the hub has every chunk before it sees the result."""
        self._closed.set()
        if self._thread.is_alive():
            # The result carries the whole output anyway; a slow hub must not hold it back for long.
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            if not self.announced and self.hub.started(self.command_id, self.attempt):
                self._request_cancel("hub requested cancel")
        except HubError as exc:
            self._on_error(exc)
        while self.enabled:
            closing = self._closed.wait(self.interval)
            if time.monotonic() >= self._retry_at:
                self._flush()
            if closing:
                return

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        while pending and self.enabled:
            batch = take_chars(pending, self._post_chars)
            try:
                if self.hub.output(self.command_id, self.attempt, batch):
                    self._request_cancel("hub requested cancel")
                self._backoff.reset()
            except HubError as exc:
                if exc.status == 413 and self._post_chars > MIN_POST_CHARS:
                    # The hub caps bytes, we count characters: JSON-escaped, one emoji takes 12 bytes.
                    self._post_chars //= 2
                    pending[:0] = batch
                    continue
                self._on_error(exc)
                if not self._closed.is_set() and self.enabled:
                    # Keep the chunks for the next tick; the hub stores them idempotently by offset.
                    with self._lock:
                        self._pending[:0] = batch + pending
                return

    def _on_error(self, exc: HubError) -> None:
        if isinstance(exc, HubRequestError) and exc.status in (404, 409):
            # The hub no longer gives us this command (timed out, or claimed again under a newer attempt).
            self.enabled = False
            self.claim_lost = True
            self._request_cancel("claim lost")
        else:
            delay = self._backoff.next()
            self._retry_at = time.monotonic() + delay
            log.warning("output streaming failed", commandId=self.command_id, error=str(exc), retryInS=round(delay, 1))

    def _request_cancel(self, reason: str) -> None:
        if not self.cancel.is_set():
            log.info("cancelling command", commandId=self.command_id, reason=reason)
            self.cancel.set()


def take_chars(pending: list[dict], limit: int) -> list[dict]:
    """Chunks off the front of `pending` holding at most `limit` characters; a chunk that does not fit is split."""
    batch: list[dict] = []
    size = 0
    while pending and size < limit:
        chunk = pending[0]
        room = limit - size
        if len(chunk["data"]) > room:
            batch.append({**chunk, "data": chunk["data"][:room]})
            pending[0] = {**chunk, "offset": chunk["offset"] + room, "data": chunk["data"][room:]}
            break
        batch.append(pending.pop(0))
        size += len(chunk["data"])
    return batch
