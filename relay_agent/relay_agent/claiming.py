"""Claiming: long-polls the hub for commands (or polls an older hub), announces them, and runs each in a free slot."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from . import full_output
from .adaptive import AdaptiveSlots
from .backoff import Backoff
from .hub import ExtensionsUnsupported, HubClient, HubError, HubExtensions, HubRejected, HubRequestError, HubUnavailable
from .logs import AGENT_LOGGER, get_logger
from .output import ExecResult
from .results import ResultDelivery
from .runner import SHUTDOWN_ERROR, CommandRunner
from .slots import RunningCommand, Slots

NEXT_MAX = 50  # the hub's cap on `max` in one `next`
HOLDING_MAX = 1000  # the hub's cap on the ids in `holding`

log = get_logger(AGENT_LOGGER)

# How long a command waits for the hub to record its start before it is left to the hub.
STARTED_RETRY_S = 60


class Claimer:
    """`run` is the poller thread: it claims while a slot is free, until `stopping` is set.

    A long-poll answer with `"configPending": true` calls `on_config_pending`.
    """

    def __init__(
        self,
        hub: HubClient,
        extensions: HubExtensions,
        slots: Slots,
        runner: CommandRunner,
        results: ResultDelivery,
        stopping: threading.Event,
        in_grace: Callable[[], bool],
        poll_interval_ms: int,
        long_poll_wait_ms: int,
        on_config_pending: Callable[[], None] = lambda: None,
        adaptive: AdaptiveSlots | None = None,
    ) -> None:
        self.hub = hub
        self.extensions = extensions
        self.slots = slots
        self.runner = runner
        self.results = results
        self.stopping = stopping
        self._in_grace = in_grace
        self.poll_interval_ms = poll_interval_ms
        self.long_poll_wait_ms = long_poll_wait_ms
        # Must not block: it only wakes whoever fetches the configuration.
        self._on_config_pending = on_config_pending
        self.adaptive = adaptive
        # This run of the agent: the hub starts what it hands us by claiming it, and hands a command again only to
        # this session, while `holding` does not list it.
        self.session = os.urandom(16).hex()  # not `secrets`: it loads OpenSSL's hashlib at start
        # Threads start as commands need them, up to the most slots there can be.
        self._workers = ThreadPoolExecutor(max_workers=adaptive.ceiling if adaptive else slots.size,
                                           thread_name_prefix="command")

    def run(self) -> None:
        backoff = Backoff()
        while not self.stopping.is_set():
            free = self.slots.wait_for_free(self.stopping)
            if self.stopping.is_set():
                return
            if self.results.spool_fault:  # no new work whose result could not be kept (ResultDelivery says why)
                self.stopping.wait(0.5)
                continue
            try:
                if self.extensions.supported is not False:
                    holding, session = self._holding()
                    # The hub hands out at most NEXT_MAX at once (and refuses more); the rest come next time.
                    asked = min(free, NEXT_MAX)
                    batch = self.hub.next_batch(asked, self.long_poll_wait_ms, holding, session)
                    if batch.config_pending:
                        self._on_config_pending()
                    commands = batch.commands
                    if self.adaptive is not None and not batch.config_pending:
                        self.adaptive.claimed(asked, len(commands))
                    if self.extensions.supported is None:
                        log.info("hub supports long-poll")
                    self.extensions.supported = True
                    admitted = [(command, running) for command in commands
                                if (running := self._admit(command)) is not None]
                    for command, running in admitted:
                        running.announced = command.get("started") is True  # the claim started it
                    # Announced before they run, and before we ask for more: together, in one request.
                    self._announce([running for _, running in admitted
                                    if running.attempt is not None and not running.announced])
                    for command, running in admitted:
                        self._dispatch(command, running)
                else:
                    self._poll_once()
                    self.stopping.wait(self.poll_interval_ms / 1000)
                backoff.reset()
            except ExtensionsUnsupported:
                log.info(
                    "hub has no long-poll extensions; falling back to polling",
                    intervalMs=self.poll_interval_ms,
                )
                self.extensions.supported = False
            except HubError as exc:
                delay = backoff.next()
                log.warning("claiming commands failed", error=str(exc), retryInS=round(delay, 1))
                self.stopping.wait(delay)

    def shutdown(self) -> None:
        """Wait for the commands handed to workers; none is taken after this."""
        self._workers.shutdown(wait=True)

    def _holding(self) -> tuple[list[str], str | None]:
        """What we have, for `holding`, and our session when that is all of it (else the hub must not hand out
        again what our session started: we might have it).

        The slots are read before the spool: a command moves from its slot to the spool, never back, so it
        cannot slip between the two reads.
        """
        running = self.slots.holding()
        try:
            everything = list(dict.fromkeys(running + self.results.unacknowledged()))
        except (sqlite3.Error, OSError):  # an unreadable spool: the list would not be all we have
            return running[:HOLDING_MAX], None
        if len(everything) <= HOLDING_MAX:
            return everything, self.session
        return running[:HOLDING_MAX], None

    def _poll_once(self) -> None:
        for listed in self.hub.list_commands():
            if self.stopping.is_set() or self.slots.free() <= 0:
                return
            command = self.hub.claim(str(listed.get("_id")))
            running = self._admit(command) if command else None
            if running is not None:
                self._dispatch(command, running)

    def _admit(self, command: dict) -> RunningCommand | None:
        """Take a claimed command into a slot; None if it is ours already or too late to run."""
        command_id = str(command.get("_id"))
        if self.slots.holds(command_id):
            return None  # handed out again before our `started` reached the hub: it is ours already
        attempt = command.get("attempt")
        running = RunningCommand(command_id, attempt if isinstance(attempt, int) else None)
        if self.stopping.is_set() and not self._in_grace():
            # Claimed by a long-poll that was in flight when we were told to stop, too late to run it.
            self.results.record(running, ExecResult(status="failed", error=SHUTDOWN_ERROR))
            return None
        self.slots.take(running)
        return running

    def _dispatch(self, command: dict, running: RunningCommand) -> None:
        try:
            self._workers.submit(self._execute, command, running)
        except RuntimeError:
            self.results.record(running, ExecResult(status="failed", error=SHUTDOWN_ERROR))
            self.slots.release(running)

    def _execute(self, command: dict, running: RunningCommand) -> None:
        result: ExecResult | None
        keeper = full_output.requested(command, running.attempt)
        try:
            with full_output.keeping(keeper):
                result = self.runner.execute(command, running)
            if keeper is not None and result is not None:
                keeper.upload(self.hub)  # before the result, so that a finished command has its full copy
        except Exception as exc:
            log.error("command crashed the agent's executor", commandId=running.command_id, exc_info=True)
            result = ExecResult(status="failed", error=f"relay agent error: {type(exc).__name__}")
        finally:
            if keeper is not None:
                keeper.close()
        # Spooled before the slot is freed: `holding` must list the command all along (see _holding).
        try:
            if result is not None:
                if self.adaptive is not None:
                    self.adaptive.finished(result.duration_ms)
                self.results.record(running, result)
        finally:
            self.slots.release(running)

    def _announce(self, admitted: list[RunningCommand]) -> None:
        """Tell the hub these commands start, before any does; each learns whether it is still ours.

        Nothing runs until the hub has recorded the start, so a command the hub
        still sees as merely claimed has certainly not run, and the hub may hand
        it out again (after a lost answer or an agent restart). The hub takes a
        repeated `started` as the same one, so an unanswered announce is retried.
        """
        if not admitted:
            return
        backoff = Backoff(base=0.2, cap=5.0)
        deadline = time.monotonic() + STARTED_RETRY_S
        reason = "refused by the hub"
        while True:
            try:
                accepted = self.hub.started_many([(running.command_id, running.attempt) for running in admitted])
                break
            except (HubRequestError, HubRejected) as exc:
                accepted, reason = {}, str(exc)
                break
            except HubUnavailable as exc:
                if time.monotonic() >= deadline or self.stopping.is_set():
                    accepted, reason = {}, f"could not announce it: {exc}"
                    break
                self.stopping.wait(backoff.next())
        for running in admitted:
            if running.command_id in accepted:
                running.announced, running.cancel_requested = True, accepted[running.command_id]
            else:
                log.warning("command no longer ours; not running it", commandId=running.command_id, error=reason)
