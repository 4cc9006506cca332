"""Runs a command locally in its own process group, streaming and capping its output.

A command is either shell text, run with `sh -c`, or an argument list (what an allow-list
allowed), run without any shell.
"""

from __future__ import annotations

import os
import select
import selectors
import signal
import subprocess  # nosec B404 - running shell commands is this agent's purpose
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from .output import (
    DEFAULT_HEAD_FRACTION,
    DEFAULT_MAX_OUTPUT,
    ExecResult,
    OutputCallback,
    StreamCapture,
    head_bytes,
    status_for_exit,
)

_POLL_SECONDS = 0.05


def _wait_exit(proc: subprocess.Popen, timeout: float) -> None:
    """Return once the process has exited or ``timeout`` has passed.

    The shell usually closes its pipes a moment before its exit can be reaped. Popen.wait with a
    timeout sleeps and polls (0.5 ms, then doubling), which would add about a millisecond to
    every command; a pidfd wakes us the moment the process exits (Linux 5.3+).
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or the process is reaped already
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        return
    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process is left in the group (zombies wait for a reaper, not for us)."""
    import psutil

    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return False


def kill_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM the whole group, then SIGKILL whatever is still there after `grace` seconds."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        if proc.returncode is not None and not group_alive(pgid):
            return
        time.sleep(0.02)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class LocalExecutor:
    def __init__(self, max_output: int = DEFAULT_MAX_OUTPUT, kill_grace: float = 2.0, shell: str = "/bin/sh",
                 max_output_head: float | int = DEFAULT_HEAD_FRACTION) -> None:
        self.max_output = max_output
        self.max_output_head = max_output_head
        self.kill_grace = kill_grace
        self.shell = shell

    def run(
        self,
        command: str | Sequence[str],
        timeout_ms: int,
        on_output: OutputCallback | None = None,
        cancel: threading.Event | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run shell text with `sh -c` or an argument list as it is; `stdin`, if given, is fed to it and closed."""
        cancel = cancel or threading.Event()
        started = time.monotonic()
        if cancel.is_set():
            return ExecResult(status="cancelled", error="command cancelled")
        try:
            proc = subprocess.Popen(  # nosec B603 - the operator's command, run as asked; policy is enforced before
                [self.shell, "-c", command] if isinstance(command, str) else list(command),
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            return ExecResult(status="failed", error=f"failed to start command: {exc}")
        if stdin is not None:
            feed_stdin(proc.stdin.write, proc.stdin.close, stdin)

        assert proc.stdout is not None and proc.stderr is not None  # nosec B101 - narrows types; Popen with PIPE always sets both
        head = head_bytes(self.max_output, self.max_output_head)
        captures: dict[Any, StreamCapture] = {
            proc.stdout: StreamCapture("stdout", self.max_output, on_output, head),
            proc.stderr: StreamCapture("stderr", self.max_output, on_output, head),
        }
        deadline = started + timeout_ms / 1000 if timeout_ms and timeout_ms > 0 else None
        stopped_by: str | None = None
        with selectors.DefaultSelector() as selector:
            for pipe in captures:
                os.set_blocking(pipe.fileno(), False)
                selector.register(pipe, selectors.EVENT_READ)
            # A background child may keep the pipes open after the shell exits; we read until EOF
            # so its output is not lost, and the timeout still bounds the wait.
            while selector.get_map():
                stopped_by = _stop_reason(cancel, deadline)
                if stopped_by:
                    kill_group(proc, self.kill_grace)
                    self._drain(selector, captures)
                    break
                wait = _POLL_SECONDS if deadline is None else max(0.0, min(_POLL_SECONDS, deadline - time.monotonic()))
                for key, _ in selector.select(wait):
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        captures[key.fileobj].feed(chunk)
                    else:
                        selector.unregister(key.fileobj)
        # The shell may outlive its pipes (it closed stdout and stderr); the timeout and cancel still apply.
        while stopped_by is None and proc.poll() is None:
            stopped_by = _stop_reason(cancel, deadline)
            if stopped_by:
                kill_group(proc, self.kill_grace)
                break
            _wait_exit(proc, _POLL_SECONDS if deadline is None
                       else max(0.001, min(_POLL_SECONDS, deadline - time.monotonic())))
        exit_code = proc.wait()
        for pipe, capture in captures.items():
            capture.close()
            pipe.close()
        duration_ms = int((time.monotonic() - started) * 1000)
        stdout, stderr = captures.values()
        result = ExecResult(
            status="completed",
            output=stdout.text,
            stderr=stderr.text,
            duration_ms=duration_ms,
            output_truncated=stdout.truncated or stderr.truncated,
        )
        if stopped_by == "timeout":
            result.status, result.error = "timeout", f"execution timed out after {timeout_ms} ms"
        elif stopped_by == "cancelled":
            result.status, result.error = "cancelled", "command cancelled"
        else:
            # A signal death is reported the way shells do: 128 + signal number.
            result.exit_code = exit_code if exit_code >= 0 else 128 - exit_code
            result.status = status_for_exit(result.exit_code)
        return result

    @staticmethod
    def _drain(selector: selectors.BaseSelector, captures: dict[Any, StreamCapture]) -> None:
        """Collect what the killed group wrote before dying, without waiting on stray pipe holders."""
        end = time.monotonic() + 0.5
        while selector.get_map() and time.monotonic() < end:
            for key, _ in selector.select(0.05):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    captures[key.fileobj].feed(chunk)
                else:
                    selector.unregister(key.fileobj)


def feed_stdin(write: Callable[[bytes], Any], close: Callable[[], Any], data: bytes) -> None:
    """Write `data` and close, from a thread: a program that stops reading must not block the agent."""

    def feed() -> None:
        with suppress(OSError, EOFError):
            write(data)
        with suppress(OSError, EOFError):
            close()

    threading.Thread(target=feed, name="stdin-feeder", daemon=True).start()


def _stop_reason(cancel: threading.Event, deadline: float | None) -> str | None:
    if cancel.is_set():
        return "cancelled"
    if deadline is not None and time.monotonic() >= deadline:
        return "timeout"
    return None
