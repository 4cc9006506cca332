"""The relay agent: claims commands from the hub, runs them, and reports results durably."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import __version__, transport
from .backoff import Backoff
from .config import AgentConfig, CommandRefused, ConfigError
from .executor import LocalExecutor
from .hub import ExtensionsUnsupported, HubClient, HubError, HubRejected, HubRequestError, HubUnavailable
from .logs import get_logger
from .metrics import MetricsCollector
from .output import ExecResult
from .settings import AgentSettings
from .spool import ResultSpool
from .ssh import SSHPool
from .store import CredentialStore, CredentialStoreError
from .streaming import OutputStreamer

log = get_logger(__name__)

CAPABILITIES = ["local_cmd", "ssh", "perf_metrics"]
SHUTDOWN_ERROR = "agent shutting down"
DEFAULT_TIMEOUT_MS = 30_000
# How long a command waits for the hub to record its start before it is left to the hub.
STARTED_RETRY_S = 60
MAX_BATCH_CHARS = 2 * 1024 * 1024


@dataclass
class RunningCommand:
    command_id: str
    attempt: int | None
    cancel: threading.Event = field(default_factory=threading.Event)
    shutting_down: bool = False
    announced: bool = False  # the hub has recorded the start
    cancel_requested: bool = False  # ... and asked, in the same answer, not to run it


class Agent:
    def __init__(self, settings: AgentSettings, hub: HubClient | None = None) -> None:
        self.settings = settings
        self.hub = hub or HubClient(settings.hub_url, settings.api_key, pool_size=settings.concurrency + 8)
        self.store = CredentialStore(settings.store_dir)
        self.config = AgentConfig(settings.store_dir, self.store, settings.shared_secret)
        self.spool = ResultSpool(settings.store_dir)
        self.local = LocalExecutor(max_output=settings.max_output)
        self.ssh = SSHPool(
            self.store,
            known_hosts=settings.known_hosts,
            pinned_keys=self.config.pinned_host_keys,
            idle_timeout=settings.ssh_idle_timeout,
            max_output=settings.max_output,
        )
        self.metrics = MetricsCollector()
        self.relay_id: str | None = None
        # None until the first long-poll tells us whether the hub has the extensions.
        self.extensions: bool | None = None
        self.stopping = threading.Event()
        self._force = threading.Event()
        self._stopped_at = 0.0
        self._background_stop = threading.Event()
        self._flush_wake = threading.Event()
        self._status_wake = threading.Event()
        self._sync_lock = threading.Lock()
        self._slots = threading.Condition()
        self._busy = 0
        self._running: dict[str, RunningCommand] = {}
        self._workers = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="command")
        self._threads: list[threading.Thread] = []
        self._poller: threading.Thread | None = None
        self._warned_no_secret = False

    # -- lifecycle ----------------------------------------------------------------------------------

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
            return self.shutdown()
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

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop()

    def start(self) -> bool:
        log.info(
            "relay agent starting",
            version=__version__,
            hub=_without_userinfo(self.settings.hub_url),
            concurrency=self.settings.concurrency,
        )
        if not self._verify():
            return False
        self._report_status()
        self.sync_config()
        if self.sync_shared_credentials():
            self._report_status()
        # Results spooled by an earlier run go out first.
        self._flush_wake.set()
        for target, name in (
            (self._flush_loop, "flusher"),
            (self._heartbeat_loop, "heartbeat"),
            (self._status_loop, "status"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._poller = threading.Thread(target=self._poll_loop, name="poller", daemon=True)
        self._poller.start()
        return True

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
            log.info(
                "verified",
                relayId=self.relay_id,
                machineId=str(info.get("machineId", "")),
                name=str(info.get("name", "")),
            )
            return True
        return False

    @property
    def _grace_end(self) -> float:
        return (self._stopped_at or time.monotonic()) + self.settings.shutdown_grace

    def _in_grace(self) -> bool:
        return time.monotonic() < self._grace_end and not self._force.is_set()

    def shutdown(self) -> int:
        log.info("shutting down", running=self._busy, graceS=self.settings.shutdown_grace)
        # The in-flight long-poll is waited for, not abandoned: the hub may claim commands for it after
        # we are gone, and those would be lost until its sweeper times them out.
        with self._slots:
            while (self._busy or self._poller_alive()) and self._in_grace():
                self._slots.wait(0.1)
            leftover = list(self._running.values())
        if leftover:
            log.warning("killing commands still running after the grace period", count=len(leftover))
            for running in leftover:
                running.shutting_down = True
                running.cancel.set()
        self._workers.shutdown(wait=True)
        if self._poller_alive():
            log.warning("long-poll still in flight at the end of the grace period; abandoning it")
        self._background_stop.set()
        self._flush_wake.set()
        self._status_wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if not self.flush_spool():
            log.warning(
                "hub unreachable at shutdown; results stay spooled for the next start", spooled=self.spool.count()
            )
        self.ssh.close()
        log.info("stopped")
        return 0

    # -- claiming -----------------------------------------------------------------------------------

    def _poller_alive(self) -> bool:
        return self._poller is not None and self._poller.is_alive()

    def _free_slots(self) -> int:
        with self._slots:
            return self.settings.concurrency - self._busy

    def _wait_for_slot(self) -> int:
        with self._slots:
            while self._busy >= self.settings.concurrency and not self.stopping.is_set():
                self._slots.wait(0.5)
            return self.settings.concurrency - self._busy

    def _poll_loop(self) -> None:
        backoff = Backoff()
        while not self.stopping.is_set():
            free = self._wait_for_slot()
            if self.stopping.is_set():
                return
            try:
                if self.extensions is not False:
                    with self._slots:
                        holding = list(self._running)
                    commands = self.hub.next_commands(free, self.settings.long_poll_wait_ms, holding)
                    if self.extensions is None:
                        log.info("hub supports long-poll")
                    self.extensions = True
                    admitted = [(command, running) for command in commands
                                if (running := self._admit(command)) is not None]
                    # Announced before they run, and before we ask for more: together, in one request.
                    self._announce([running for _, running in admitted if running.attempt is not None])
                    for command, running in admitted:
                        self._dispatch(command, running)
                else:
                    self._poll_once()
                    self.stopping.wait(self.settings.poll_interval_ms / 1000)
                backoff.reset()
            except ExtensionsUnsupported:
                log.info(
                    "hub has no long-poll extensions; falling back to polling",
                    intervalMs=self.settings.poll_interval_ms,
                )
                self.extensions = False
            except HubError as exc:
                delay = backoff.next()
                log.warning("claiming commands failed", error=str(exc), retryInS=round(delay, 1))
                self.stopping.wait(delay)

    def _poll_once(self) -> None:
        for listed in self.hub.list_commands():
            if self.stopping.is_set() or self._free_slots() <= 0:
                return
            command = self.hub.claim(str(listed.get("_id")))
            running = self._admit(command) if command else None
            if running is not None:
                self._dispatch(command, running)

    def _admit(self, command: dict) -> RunningCommand | None:
        """Take a claimed command into a slot; None if it is ours already or too late to run."""
        command_id = str(command.get("_id"))
        with self._slots:
            if command_id in self._running:
                return None  # handed out again before our `started` reached the hub: it is ours already
        attempt = command.get("attempt")
        running = RunningCommand(command_id, attempt if isinstance(attempt, int) else None)
        if self.stopping.is_set() and not self._in_grace():
            # Claimed by a long-poll that was in flight when we were told to stop, too late to run it.
            self._record(running, ExecResult(status="failed", error=SHUTDOWN_ERROR))
            return None
        with self._slots:
            self._busy += 1
            self._running[command_id] = running
        return running

    def _dispatch(self, command: dict, running: RunningCommand) -> None:
        try:
            self._workers.submit(self._execute, command, running)
        except RuntimeError:
            self._release(running)
            self._record(running, ExecResult(status="failed", error=SHUTDOWN_ERROR))

    def _release(self, running: RunningCommand) -> None:
        with self._slots:
            self._busy -= 1
            self._running.pop(running.command_id, None)
            self._slots.notify_all()

    def cancel(self, command_id: str) -> bool:
        with self._slots:
            running = self._running.get(command_id)
        if running is None:
            return False
        log.info("cancelling command", commandId=command_id, reason="hub requested cancel")
        running.cancel.set()
        return True

    # -- executing ----------------------------------------------------------------------------------

    def _execute(self, command: dict, running: RunningCommand) -> None:
        result: ExecResult | None
        try:
            result = self.execute(command, running)
        except Exception as exc:
            log.error("command crashed the agent's executor", commandId=running.command_id, exc_info=True)
            result = ExecResult(status="failed", error=f"relay agent error: {type(exc).__name__}")
        finally:
            self._release(running)
        if result is not None:
            self._record(running, result)

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

    def execute(self, command: dict, running: RunningCommand) -> ExecResult | None:
        if self.extensions is True and running.attempt is not None:
            # Announced by the poller: run only what the hub recorded as started.
            if not running.announced:
                return None
            if running.cancel_requested:
                return ExecResult(status="cancelled", error="cancelled before it started")
        text = command.get("command")
        target_type = command.get("targetType") or "local"
        timeout_ms = command.get("timeoutMs") or DEFAULT_TIMEOUT_MS
        if not isinstance(text, str) or not text.strip():
            return ExecResult.refused("command is empty")
        if not isinstance(timeout_ms, (int, float)) or timeout_ms <= 0:
            return ExecResult.refused(f"invalid timeoutMs {timeout_ms!r}")
        try:
            argv, refusal = self.config.authorize_command(text), None
        except CommandRefused as exc:
            argv, refusal = None, str(exc)
        # With an allow-list, only the allowed argument list runs, and without a shell.
        runnable = text if argv is None else argv
        host, port = command.get("targetHost"), command.get("targetPort") or 22
        try:
            port = int(port)
        except (TypeError, ValueError):
            return ExecResult.refused(f"invalid targetPort {port!r}")
        if refusal is None and target_type == "ssh":
            refusal = "ssh command without targetHost" if not host else self.config.check_ssh_target(host, port)
        elif refusal is None and target_type != "local":
            refusal = f"unknown targetType {target_type!r}"
        if refusal:
            log.warning("command refused", commandId=running.command_id, reason=refusal)
            return ExecResult.refused(refusal)
        log.info(
            "command started",
            commandId=running.command_id,
            attempt=running.attempt,
            targetType=target_type,
            targetHost=host or "",
        )
        streamer = OutputStreamer(
            self.hub,
            running.command_id,
            running.attempt,
            running.cancel,
            interval=self.settings.output_flush_ms / 1000,
            enabled=self.extensions is True,
            announced=running.announced,
        )
        streamer.start()
        try:
            if target_type == "ssh":
                result = self.ssh.run(
                    str(host), port, command.get("targetUsername"), runnable, int(timeout_ms), streamer.add,
                    running.cancel,
                )
            else:
                result = self.local.run(runnable, int(timeout_ms), streamer.add, running.cancel)
        finally:
            streamer.close()
        if running.shutting_down and result.status == "cancelled":
            result.status, result.error = "failed", SHUTDOWN_ERROR
        return result

    def _record(self, running: RunningCommand, result: ExecResult) -> None:
        body = self.result_body(running, result)
        try:
            self.spool.put(body)
        except Exception:
            log.error("result could not be spooled", commandId=running.command_id, exc_info=True)
            return
        self._flush_wake.set()
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
        return body

    # -- results ------------------------------------------------------------------------------------

    def _flush_loop(self) -> None:
        backoff = Backoff()
        delay = 0.0
        while not self._background_stop.is_set():
            if delay:
                # Backing off: new results do not wake us, so an unreachable hub is not hammered.
                self._background_stop.wait(delay)
            else:
                self._flush_wake.wait(30)
            if self._background_stop.is_set():
                return
            self._flush_wake.clear()
            if self.flush_spool():
                backoff.reset()
                delay = 0.0
            else:
                delay = backoff.next()
                log.warning("results not delivered, retrying", spooled=self.spool.count(), retryInS=round(delay, 1))

    def flush_spool(self) -> bool:
        """Post spooled results until none are left; False when the hub did not take them all."""
        while True:
            items = self.spool.pending(limit=50)
            if not items:
                return True
            try:
                if self.extensions is True:
                    done = self._post_batch(items)
                else:
                    done = self._post_each(items)
            except ExtensionsUnsupported:
                self.extensions = False
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

    # -- background ---------------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = self.settings.heartbeat_interval_ms / 1000
        busy_interval = min(interval, self.settings.busy_heartbeat_ms / 1000)
        last_beat = last_sync = time.monotonic()
        while not self._background_stop.wait(busy_interval):
            now = time.monotonic()
            if now - last_beat < interval and not (self._running and now - last_beat >= busy_interval):
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
                self.sync_config()

    def _status_loop(self) -> None:
        while True:
            interval = self.config.metrics_interval_ms or self.settings.metrics_interval_ms
            self._status_wake.wait(interval / 1000)
            self._status_wake.clear()
            if self._background_stop.is_set():
                return
            pending = self._report_status()
            if pending:
                self.sync_config()
            if self.sync_shared_credentials():
                self._report_status()

    def status_body(self) -> dict:
        body: dict[str, Any] = {
            "relayId": self.relay_id,
            "capabilities": CAPABILITIES,
            "version": __version__,
            "hostname": socket.gethostname(),
            "platform": sys.platform,
            "credentials": self.store.inventory(),
        }
        try:
            body["metrics"] = self.metrics.collect()
        except Exception as exc:
            log.warning("metrics unavailable", error=str(exc))
        return body

    def _report_status(self) -> int:
        try:
            answer = self.hub.report_status(self.status_body())
        except (HubError, CredentialStoreError) as exc:
            log.warning("status report failed", error=str(exc))
            return 0
        pending = answer.get("pendingConfigPushes")
        return pending if isinstance(pending, int) else 0

    def sync_config(self) -> None:
        with self._sync_lock:
            try:
                pushes = self.hub.config_pushes(self.relay_id or "")
            except HubError as exc:
                log.warning("fetching config pushes failed", error=str(exc))
                return
            for push in pushes:
                push_id, push_type = str(push.get("_id")), str(push.get("pushType"))
                try:
                    payload = push.get("payload")
                    self.config.apply(push_type, payload if payload is not None else "")
                    success, message = True, None
                except ConfigError as exc:
                    success, message = False, str(exc)
                except Exception as exc:
                    success, message = False, f"relay agent error: {type(exc).__name__}"
                log.info(
                    "config push applied" if success else "config push rejected",
                    pushId=push_id,
                    pushType=push_type,
                    error=message or "",
                )
                if success and push_type == "metrics_interval":
                    self._status_wake.set()
                try:
                    self.hub.ack_config_push(push_id, success, message)
                except HubError as exc:
                    # Unacked pushes come back; applying one twice is harmless.
                    log.warning("acking config push failed", pushId=push_id, error=str(exc))

    def sync_shared_credentials(self) -> bool:
        """Store the shared credentials assigned to this relay; True when any changed."""
        try:
            items = self.hub.shared_credentials(self.relay_id or "")
        except HubError as exc:
            log.warning("fetching shared credentials failed", error=str(exc))
            return False
        if items and not self.settings.shared_secret:
            if not self._warned_no_secret:
                log.warning("shared credentials are assigned but no --shared-secret is set", count=len(items))
                self._warned_no_secret = True
            return False
        changed = False
        for item in items:
            name = str(item.get("name", ""))
            try:
                value = transport.decrypt(str(item.get("encryptedValue", "")), self.settings.shared_secret or "")
                before = self.store.get(name)
                stored = self.store.put(
                    name,
                    str(item.get("credentialType", "")),
                    value,
                    item.get("targetHost") or None,
                    item.get("username") or None,
                    storage_mode="shared",
                )
            except (transport.TransportDecryptError, CredentialStoreError) as exc:
                log.warning("shared credential not stored", name=name, error=str(exc))
                continue
            if before is None or before.last_updated_at != stored.last_updated_at:
                changed = True
                log.info("shared credential stored", name=name, credentialType=stored.credential_type)
        return changed


def _shrink(body: dict) -> dict:
    """Halve the output of a result the hub found too large, and say it was truncated."""
    smaller = dict(body)
    for stream in ("output", "stderr"):
        text = smaller.get(stream) or ""
        smaller[stream] = text[: len(text) // 2]
    if "attempt" in smaller:
        smaller["outputTruncated"] = True
    return smaller


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
