"""The relay agent: builds its parts and runs them from start-up to a graceful shutdown; heartbeat and status loops."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import __version__, launcher, selfupdate
from .adaptive import AdaptiveSlots
from .backoff import Backoff
from .claiming import Claimer
from .config import AgentConfig
from .executor import LocalExecutor
from .hub import HubClient, HubError, HubExtensions, HubRejected, HubRequestError, HubUnavailable, NotARelayhub
from .hub_sync import HubSync
from .logs import AGENT_LOGGER, get_logger
from .output import ExecResult
from .results import ResultDelivery
from .runner import CommandRunner
from .settings import AgentSettings
from .slots import RunningCommand, Slots
from .spool import ResultSpool
from .ssh import SSHPool
from .status import StatusReporter
from .store import CredentialStore

log = get_logger(AGENT_LOGGER)

STARTING_S = 30.0


class Agent:
    def __init__(self, settings: AgentSettings, hub: HubClient | None = None) -> None:
        self.settings = settings
        self.most_slots = max(settings.max_concurrency, settings.concurrency) if settings.adaptive_concurrency \
            else settings.concurrency
        self.hub = hub or HubClient(settings.hub_url, settings.api_key, pool_size=self.most_slots + 8)
        self.store = CredentialStore(settings.store_dir)
        self.config = AgentConfig(settings.store_dir, self.store, settings.shared_secret)
        self.spool = ResultSpool(settings.store_dir)
        self.local = LocalExecutor(max_output=settings.max_output, max_output_head=settings.max_output_head)
        self.ssh = SSHPool(
            self.store,
            known_hosts=settings.known_hosts,
            pinned_keys=self.config.pinned_host_keys,
            idle_timeout=settings.ssh_idle_timeout,
            max_output=settings.max_output,
            max_output_head=settings.max_output_head,
        )
        self.relay_id: str | None = None
        self.extensions = HubExtensions()
        self.release_key = selfupdate.ReleaseKey(settings.store_dir, settings.release_public_key)
        self.status = StatusReporter(self.hub, self.store, self.extensions, self_update=not settings.no_self_update)
        # Set once an update is installed: run() then ends with launcher.RESTART_EXIT, to restart into it.
        self.restart = False
        self.updater = selfupdate.Updater(
            self.hub, settings.store_dir, settings.install_root or settings.store_dir / "agent", self.release_key,
            enabled=not settings.no_self_update, deadline_s=settings.update_deadline_s, on_installed=self._restart)
        self.stopping = threading.Event()
        self._force = threading.Event()
        self._stopped_at = 0.0
        self._background_stop = threading.Event()
        self._status_wake = threading.Event()
        self._config_wake = threading.Event()
        self.sync = HubSync(self.hub, self.config, self.store, settings.shared_secret, self._status_wake.set)
        self.slots = Slots(settings.concurrency)
        adaptive = AdaptiveSlots(self.slots, settings.concurrency, self.most_slots) if settings.adaptive_concurrency else None
        self.results = ResultDelivery(self.hub, self.spool, self.extensions, self._background_stop)
        self.runner = CommandRunner(
            self.hub, self.extensions, self.config, self.local, self.ssh, settings.output_flush_ms, self.updater
        )
        self.claimer = Claimer(
            self.hub,
            self.extensions,
            self.slots,
            self.runner,
            self.results,
            self.stopping,
            self._in_grace,
            poll_interval_ms=settings.poll_interval_ms,
            long_poll_wait_ms=settings.long_poll_wait_ms,
            on_config_pending=self._config_wake.set,
            adaptive=adaptive,
        )
        self._threads: list[threading.Thread] = []
        self._poller: threading.Thread | None = None

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or `stop()`); the process exit code."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        try:
            if not self.start():
                return 0 if self.stopping.is_set() else 2
            while not self.stopping.wait(1.0):
                pass
            code = self.shutdown()
            return launcher.RESTART_EXIT if self.restart else code
        finally:
            self.close()

    def close(self) -> None:
        self.spool.close()
        self.hub.close()

    def stop(self) -> None:
        if self.stopping.is_set():
            self._force.set()
            return
        self._stopped_at = time.monotonic()
        self.stopping.set()

    def _restart(self) -> None:
        self.restart = True
        self.stop()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop()

    def start(self) -> bool:
        log.info(
            "relay agent starting",
            version=__version__,
            hub=_without_userinfo(self.settings.hub_url),
            concurrency=f"{self.settings.concurrency}-{self.most_slots} (adapts)"
            if self.settings.adaptive_concurrency else self.settings.concurrency,
        )
        if not self._check_hub() or not self._verify():
            return False
        self._update_outcome()
        self.status.report(self.relay_id)
        self.sync.sync_config(self.relay_id)
        if self.sync.sync_shared_credentials(self.relay_id):
            self.status.report(self.relay_id)
        # Results spooled by an earlier run go out first.
        self.results.wake()
        for target, name in (
            (self.results.run, "flusher"),
            (self._heartbeat_loop, "heartbeat"),
            (self._status_loop, "status"),
            (self._config_loop, "config"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._poller = threading.Thread(target=self.claimer.run, name="poller", daemon=True)
        self._poller.start()
        return True

    def _check_hub(self) -> bool:
        """Before the key leaves this process, make sure a relayhub answers at the hub URL (GET /relay/hello)."""
        if self.settings.skip_hub_check:
            log.warning("not checking that the hub is a relayhub (--skip-hub-check)")
            return True
        backoff = Backoff()
        began = time.monotonic()
        while not self.stopping.is_set():
            try:
                self.hub.hello()
                self.extensions.hello_answered = True
                return True
            except NotARelayhub as exc:
                log.error(
                    "the server at the hub URL is not a relayhub; not sending the api key",
                    hub=_without_userinfo(self.settings.hub_url),
                    error=str(exc),
                    hint="check HUB_URL and that the hub is the program on that port; for a hub without "
                    "/relay/hello (the original hub) pass --skip-hub-check",
                )
                return False
            except HubUnavailable as exc:
                delay = backoff.next()
                # A hub started beside the agent (make run) takes a few seconds to listen: no warning for that.
                starting = time.monotonic() - began < STARTING_S
                (log.info if starting else log.warning)(
                    "waiting for the hub" if starting else "hub unavailable, retrying",
                    error=str(exc),
                    retryInS=round(delay, 1),
                )
                self.stopping.wait(delay)
        return False

    def _verify(self) -> bool:
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                info = self.hub.verify()
            except (HubRejected, HubRequestError) as exc:
                log.error("hub rejected the api key", status=exc.status, error=str(exc))
                return False
            except HubUnavailable as exc:
                delay = backoff.next()
                log.warning("hub unavailable, retrying", error=str(exc), retryInS=round(delay, 1))
                self.stopping.wait(delay)
                continue
            if info.get("valid") is False or not info.get("assignmentId"):
                log.error("hub did not accept the api key", error=str(info.get("error", "")))
                return False
            self.relay_id = str(info["assignmentId"])
            if not self.settings.no_self_update:
                self.release_key.learn(info.get("agentReleasePublicKey"))
            log.info(
                "verified",
                relayId=self.relay_id,
                machineId=str(info.get("machineId", "")),
                name=str(info.get("name", "")),
            )
            return True
        return False

    def _update_outcome(self) -> None:
        """A pending update's outcome, now that this process verified: spooled, to go out with the other results."""
        outcome = selfupdate.after_verify(self.settings.store_dir, os.environ.get(launcher.ENV_UNDER_LAUNCHER) == "1")
        if outcome is not None:
            running, result = outcome
            self.results.record(running, result)

    @property
    def _grace_end(self) -> float:
        return (self._stopped_at or time.monotonic()) + self.settings.shutdown_grace

    def _in_grace(self) -> bool:
        return time.monotonic() < self._grace_end and not self._force.is_set()

    def _poller_alive(self) -> bool:
        return self._poller is not None and self._poller.is_alive()

    def shutdown(self) -> int:
        log.info("shutting down", running=self.slots.busy, graceS=self.settings.shutdown_grace)
        # The in-flight long-poll is waited for, not abandoned: the hub may claim commands for it after
        # we are gone, and those would be lost until its sweeper times them out.
        leftover = self.slots.wait_while(lambda: (self.slots.busy or self._poller_alive()) and self._in_grace())
        if leftover:
            log.warning("killing commands still running after the grace period", count=len(leftover))
            for running in leftover:
                running.shutting_down = True
                running.cancel.set()
        self.claimer.shutdown()
        if self._poller_alive():
            log.warning("long-poll still in flight at the end of the grace period; abandoning it")
        self._background_stop.set()
        self.results.wake()
        self._status_wake.set()
        self._config_wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if not self.results.flush_at_shutdown():
            log.warning(
                "hub unreachable at shutdown; results stay spooled for the next start", spooled=self.spool.count()
            )
        self.ssh.close()
        log.info("stopped")
        return 0

    def cancel(self, command_id: str) -> bool:
        running = self.slots.find(command_id)
        if running is None:
            return False
        log.info("cancelling command", commandId=command_id, reason="hub requested cancel")
        running.cancel.set()
        return True

    def execute(self, command: dict, running: RunningCommand) -> ExecResult | None:
        """Run one claimed command in this thread, outside the slots; None when the hub did not record its start."""
        return self.runner.execute(command, running)

    def _heartbeat_loop(self) -> None:
        interval = self.settings.heartbeat_interval_ms / 1000
        busy_interval = min(interval, self.settings.busy_heartbeat_ms / 1000)
        last_beat = last_sync = time.monotonic()
        while not self._background_stop.wait(busy_interval):
            now = time.monotonic()
            if now - last_beat < interval and not (self.slots.busy and now - last_beat >= busy_interval):
                continue
            last_beat = now
            try:
                for command_id in self.hub.heartbeat():
                    self.cancel(command_id)
            except HubError as exc:
                log.warning("heartbeat failed", error=str(exc))
            self.ssh.reap_idle()
            if now - last_sync >= interval and not self.stopping.is_set():
                last_sync = now
                self.sync.sync_config(self.relay_id)

    def _status_loop(self) -> None:
        while True:
            interval = self.config.metrics_interval_ms or self.settings.metrics_interval_ms
            self._status_wake.wait(interval / 1000)
            self._status_wake.clear()
            if self._background_stop.is_set():
                return
            pending = self.status.report(self.relay_id)
            if pending:
                self.sync.sync_config(self.relay_id)
            if self.sync.sync_shared_credentials(self.relay_id):
                self.status.report(self.relay_id)

    def _config_loop(self) -> None:
        """Fetch config pushes and shared credentials as soon as a long-poll says some wait (`configPending`).

        One thread, woken by an event: flags that arrive while it syncs make one more sync, not one each.
        """
        while True:
            self._config_wake.wait()
            self._config_wake.clear()
            if self._background_stop.is_set():
                return
            if self.stopping.is_set():
                continue
            self.sync.sync_config(self.relay_id)
            if self.sync.sync_shared_credentials(self.relay_id):
                self.status.report(self.relay_id)


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
