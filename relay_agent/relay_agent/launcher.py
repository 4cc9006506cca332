"""The launcher: the process that outlives a broken new version of the agent (``python -m relay_agent.launcher``).

An agent that accepts an update (``selfupdate``) installs it, writes the pending-update marker
(``update.json`` in its store directory, state ``trial``) and restarts: the first time by
``os.execv`` into this launcher, from its own (old, trusted) code and with the same process id;
under the launcher by exiting with ``RESTART_EXIT``. The launcher stays as the parent and runs the
agent as its child, from ``<install root>/current`` when that exists, else from the code the first
agent ran. While the marker says ``trial`` it watches the child: the new version writes ``verified``
once it has verified with the hub; if it exits first, or the deadline passes (``--update-deadline``,
default 60 s), the launcher stops it, points ``current`` back at the previous version, marks the
update ``failed`` with the reason and starts the previous version, which reports the command failed.

SIGTERM and SIGINT are passed to the child; the launcher then exits with the child's exit code.
Standard library only: it must run whatever state the agent's dependencies are in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess  # nosec B404 - the launcher runs the agent as its child
import sys
import time
from pathlib import Path

MARKER = "update.json"
RESTART_EXIT = 75
ENV_UNDER_LAUNCHER = "RELAY_AGENT_LAUNCHER"
ENV_STORE = "RELAY_LAUNCHER_STORE_DIR"
ENV_ROOT = "RELAY_LAUNCHER_INSTALL_ROOT"
ENV_CODE = "RELAY_LAUNCHER_CODE_DIR"
ENV_BASE_PATH = "RELAY_LAUNCHER_BASE_PYTHONPATH"
STOP_WAIT_S = 10.0


def read_marker(store_dir: Path) -> dict | None:
    try:
        data = json.loads((store_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(store_dir: Path, data: dict) -> None:
    path = store_dir / MARKER
    tmp = path.with_name(f".{MARKER}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def remove_marker(store_dir: Path) -> None:
    (store_dir / MARKER).unlink(missing_ok=True)


def point_current(root: Path, target: Path | None) -> None:
    """Make ``root/current`` a symlink to ``target`` atomically (a temporary link renamed over it); None removes it."""
    current = root / "current"
    if target is None:
        current.unlink(missing_ok=True)
        return
    tmp = root / f".current.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, current)


def rollback(root: Path, marker: dict) -> None:
    """``current`` back to the previous version: its directory if it was one of ours, else removed."""
    previous = Path(marker.get("previousDir") or "")
    versions = (root / "versions").resolve()
    if marker.get("previousDir") and previous.resolve().parent == versions:
        point_current(root, previous.resolve())
    else:
        point_current(root, None)


def _log(message: str) -> None:
    print(f"relay-agent launcher: {message}", file=sys.stderr, flush=True)


class Launcher:
    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.store = Path(os.environ[ENV_STORE])
        self.root = Path(os.environ[ENV_ROOT])
        self.initial = os.environ[ENV_CODE]
        self.base_path = os.environ.get(ENV_BASE_PATH, "")
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def code_dir(self) -> str:
        current = self.root / "current"
        return str(current) if current.exists() else self.initial

    def spawn(self) -> subprocess.Popen:
        code = self.code_dir()
        path = os.pathsep.join(p for p in (code, self.base_path) if p)
        env = {**os.environ, "PYTHONPATH": path, ENV_UNDER_LAUNCHER: "1"}
        return subprocess.Popen([sys.executable, "-m", "relay_agent", *self.args], env=env)  # nosec B603 - our argv

    def on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def stop_child(self) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def watch(self, trial: dict) -> str | None:
        """None once the new version verified (or we are stopping); else why it is rolled back."""
        deadline_s = float(trial.get("deadlineS") or 60)
        deadline = time.monotonic() + deadline_s
        version = trial.get("toVersion", "?")
        while not self.stopping:
            marker = read_marker(self.store) or {}
            if marker.get("state") == "verified":
                remove_marker(self.store)
                _log(f"version {version} verified with the hub")
                return None
            code = self.child.poll()
            if code is not None:
                return f"the new version {version} exited with code {code} before it verified with the hub"
            if time.monotonic() >= deadline:
                return f"the new version {version} did not verify with the hub within {deadline_s:g} s"
            time.sleep(0.1)
        return None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        while True:
            marker = read_marker(self.store)
            trial = marker if marker and marker.get("state") == "trial" else None
            self.child = self.spawn()
            if trial is not None:
                reason = self.watch(trial)
                if reason is not None:
                    _log(f"rolling back: {reason}")
                    self.stop_child()
                    rollback(self.root, trial)
                    write_marker(self.store, {**trial, "state": "failed", "reason": reason})
                    if self.stopping:
                        return 0
                    continue
            while True:
                try:
                    code = self.child.wait()
                    break
                except InterruptedError:  # pragma: no cover - PEP 475 retries wait() itself
                    continue
            if code == RESTART_EXIT and not self.stopping:
                continue
            return code


def main(argv: list[str] | None = None) -> int:
    return Launcher(sys.argv[1:] if argv is None else list(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
