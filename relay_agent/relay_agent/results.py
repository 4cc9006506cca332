"""Command results: spooled as each command finishes, then delivered to the hub until it acknowledges them."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from .backoff import Backoff
from .hub import ExtensionsUnsupported, HubClient, HubError, HubExtensions, HubRequestError
from .logs import AGENT_LOGGER, get_logger
from .output import ExecResult, halve
from .slots import RunningCommand
from .spool import ResultSpool

log = get_logger(AGENT_LOGGER)

MAX_BATCH_CHARS = 2 * 1024 * 1024
SPOOL_PROBE_S = 2.0


class ResultDelivery:
    """`record` spools a result and wakes `run`, the delivery loop, which posts until `stopped` is set."""

    def __init__(self, hub: HubClient, spool: ResultSpool, extensions: HubExtensions, stopped: threading.Event) -> None:
        self.hub = hub
        self.spool = spool
        self.extensions = extensions
        self._stopped = stopped
        self._wake = threading.Event()
        # Results the spool could not take (its disk is full), kept here until it can or the hub has them.
        self._held: list[dict] = []
        self._held_lock = threading.Lock()
        self.spool_fault = ""  # why the spool cannot be written, while it cannot; claiming waits meanwhile

    def wake(self) -> None:
        self._wake.set()

    def unacknowledged(self) -> list[str]:
        """Ids of the commands whose results the hub has not acknowledged yet (spooled, or held in memory); raises
        ``sqlite3.Error`` or ``OSError`` when the spool cannot be read."""
        with self._held_lock:
            held = [str(body.get("commandId")) for body in self._held]
        return list(dict.fromkeys(self.spool.command_ids() + held))

    def record(self, running: RunningCommand, result: ExecResult) -> None:
        body = self.result_body(running, result)
        try:
            self.spool.put(body)
        except (sqlite3.Error, OSError) as exc:
            with self._held_lock:
                self._held.append(body)
            self._spool_failed(exc)
        self._wake.set()
        log.info(
            "command finished",
            commandId=running.command_id,
            status=result.status,
            exitCode=result.exit_code,
            durationMs=result.duration_ms,
            error=result.error or "",
        )

    def result_body(self, running: RunningCommand, result: ExecResult) -> dict:
        body: dict[str, Any] = {
            "commandId": running.command_id,
            "success": result.success,
            "output": result.output,
            "stderr": result.stderr,
            "durationMs": result.duration_ms,
        }
        if result.exit_code is not None:
            body["exitCode"] = result.exit_code
        if result.error:
            body["error"] = result.error
        # Extension fields go only to a hub that gave the command an attempt; an original hub may reject unknown fields.
        if running.attempt is not None:
            body["attempt"] = running.attempt
            if result.status in ("timeout", "cancelled"):
                body["status"] = result.status
            if result.output_truncated:
                body["outputTruncated"] = True
            if result.packages is not None:
                body["packageResult"] = result.packages
        return body

    def run(self) -> None:
        backoff = Backoff()
        delay = 0.0
        while not self._stopped.is_set():
            if delay:
                # Backing off: new results do not wake us, so an unreachable hub is not hammered.
                self._stopped.wait(delay)
            else:
                self._wake.wait(30)
            if self._stopped.is_set():
                return
            self._wake.clear()
            try:
                self._respool()
                delivered = self.flush_spool()  # reading works on a full disk; acknowledging may not
            except (sqlite3.Error, OSError) as exc:
                self._spool_failed(exc)
                delivered = False
            if self.spool_fault:
                self._deliver_held()
                delay = SPOOL_PROBE_S  # look again soon: claiming waits until the spool takes writes
            elif delivered:
                backoff.reset()
                delay = 0.0
            else:
                delay = backoff.next()
                log.warning("results not delivered, retrying", spooled=self.spool.count(), retryInS=round(delay, 1))

    def _spool_failed(self, exc: Exception) -> None:
        if not self.spool_fault:
            log.error("result spool cannot be written: claiming paused until it can; finished results are kept in "
                      "memory and posted directly meanwhile", spool=str(self.spool.path), error=str(exc))
        self.spool_fault = str(exc) or type(exc).__name__

    def _respool(self) -> None:
        """While the spool is faulty: move held results into it once it takes writes again (or, with none held,
        probe it)."""
        if not self.spool_fault:
            return
        with self._held_lock:
            held = list(self._held)
        try:
            for body in held:
                self.spool.put(body)
                with self._held_lock:
                    self._held.remove(body)
            if not held:
                self.spool.probe()
        except (sqlite3.Error, OSError) as exc:
            self.spool_fault = str(exc) or type(exc).__name__
            return
        self.spool_fault = ""
        log.info("result spool writable again; claiming resumed", spooled=self.spool.count())

    def _deliver_held(self) -> None:
        """Post the results held in memory, one by one (they are few: claiming waits)."""
        with self._held_lock:
            held = list(self._held)
        for body in held:
            try:
                status = self.hub.post_result(body)
            except HubError as exc:
                log.warning("posting a held result failed", commandId=body.get("commandId"), error=str(exc))
                return
            if status in (200, 400, 404, 409):
                with self._held_lock:
                    self._held.remove(body)

    def flush_at_shutdown(self) -> bool:
        """The last delivery: held results first, into the spool if it takes them now, else to the hub; False if
        something is left (spooled results stay for the next start; held ones are lost, and said so)."""
        try:
            self._respool()
            delivered = self.flush_spool()
        except (sqlite3.Error, OSError) as exc:
            self._spool_failed(exc)
            delivered = False
        if self._held:
            self._deliver_held()
        if self._held:
            log.error("results lost at shutdown: neither the spool nor the hub took them",
                      commandIds=[body.get("commandId") for body in self._held])
        return delivered and not self._held

    def flush_spool(self) -> bool:
        """Post spooled results until none are left; False when the hub did not take them all."""
        while True:
            items = self.spool.pending(limit=50)
            if not items:
                return True
            try:
                if self.extensions.supported is True:
                    done = self._post_batch(items)
                else:
                    done = self._post_each(items)
            except ExtensionsUnsupported:
                self.extensions.supported = False
                continue
            except HubError as exc:
                log.warning("posting results failed", error=str(exc))
                return False
            if not done:
                return False

    def _post_batch(self, items: list[tuple[tuple[str, int], dict]]) -> bool:
        batch: list[tuple[tuple[str, int], dict]] = []
        size = 0
        for key, body in items:
            length = len(body.get("output", "")) + len(body.get("stderr", ""))
            if batch and size + length > MAX_BATCH_CHARS:
                break
            batch.append((key, body))
            size += length
        try:
            answers = self.hub.post_results([body for _, body in batch])
        except HubRequestError as exc:
            log.warning("batch results refused; posting one by one", status=exc.status)
            return self._post_each(batch)
        by_id: dict[str, list[dict]] = {}
        for answer in answers:
            by_id.setdefault(str(answer.get("commandId")), []).append(answer)
        answered: list[tuple[tuple[str, int], int, Any]] = []
        for key, _ in batch:
            same_id = by_id.get(key[0])
            answer = same_id.pop(0) if same_id else {}
            status = answer.get("status")
            if isinstance(status, str) and status.isdigit():
                status = int(status)
            if status in (200, 404, 409):
                answered.append((key, status, answer.get("error")))
            else:
                log.warning("result not accepted", commandId=key[0], status=status, error=str(answer.get("error", "")))
        self._acked(*answered)
        return len(answered) == len(batch)

    def _post_each(self, items: list[tuple[tuple[str, int], dict]]) -> bool:
        for key, body in items:
            status = self.hub.post_result(body)
            if status == 413 and (body.get("output") or body.get("stderr")):
                self.spool.replace(key, _shrink(body))
                return True
            self._acked((key, status, None))
        return True

    def _acked(self, *answered: tuple[tuple[str, int], int, Any]) -> None:
        self.spool.ack(*(key for key, _, _ in answered))
        for key, status, error in answered:
            if status == 200:
                log.debug("result delivered", commandId=key[0])
            else:
                # 404/409: the hub will never take this result (not our claim, stale attempt, already finished).
                log.warning("result dropped by hub", commandId=key[0], status=status, error=str(error or ""))


def _shrink(body: dict) -> dict:
    """Halve the output of a result the hub found too large, head and tail kept, and say it was truncated."""
    smaller = dict(body)
    for stream in ("output", "stderr"):
        text = smaller.get(stream) or ""
        smaller[stream] = halve(text) if text else text
    if "attempt" in smaller:
        smaller["outputTruncated"] = True
    return smaller
