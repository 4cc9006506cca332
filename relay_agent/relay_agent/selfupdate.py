"""Signed self-update (capability ``self_update``): the pinned release key, and an ``update_agent`` command.

- **The release key.** The Ed25519 public key that signs releases is given at install time
  (``--release-public-key`` / ``RELAY_RELEASE_PUBLIC_KEY``, or the file ``release-public-key`` in the
  store directory), or else taken from the hub's verify answer the first time and written to that
  file. From then on no release signed by another key, and no unsigned one, is accepted.
- **An update.** The wheel is downloaded from the hub with the relay's key; its SHA-256 must be the
  command's, the signature must verify over (version, SHA-256) with the pinned key, and the wheel's
  metadata must name relay-agent at that version. It is installed with ``pip install --no-deps
  --target <install root>/versions/<version>``, ``<install root>/current`` is switched to it
  atomically, the pending-update marker is written, and the agent restarts into the launcher
  (``launcher``), which runs the new version and rolls back if it does not verify in time.
- **After the restart** (``after_verify``): the new version marks the update verified and reports
  the command completed; the old one, started again after a rollback, reports it failed with the reason.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import __version__, launcher
from .files import write_private
from .hub import HubClient, HubError
from .logs import AGENT_LOGGER, get_logger
from .output import ExecResult
from .slots import RunningCommand

log = get_logger(AGENT_LOGGER)

MESSAGE_PREFIX = b"relayhub-agent-release:v1\n"
KEY_FILE = "release-public-key"
VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+!_-]{0,63}\Z")
SHA256 = re.compile(r"[0-9a-f]{64}\Z")
MAX_WHEEL_BYTES = 50 * 1024 * 1024
PIP_TIMEOUT_S = 300


class UpdateRefused(Exception):
    pass


def parse_public_key(text: str) -> str:
    """The base64 text of a raw 32-byte Ed25519 public key, checked; ValueError otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the release public key is not base64") from None
    if len(raw) != 32:
        raise ValueError("the release public key must be 32 bytes (base64 of a raw Ed25519 public key)")
    return base64.b64encode(raw).decode()


def signed_message(version: str, sha256_hex: str) -> bytes:
    return MESSAGE_PREFIX + version.encode() + b"\n" + sha256_hex.lower().encode() + b"\n"


def code_dir() -> Path:
    """The directory that holds the running ``relay_agent`` package (a path entry)."""
    return Path(__file__).resolve().parent.parent


class ReleaseKey:
    """The pinned release public key: the one given at start-up, else the one in the store, else learned once."""

    def __init__(self, store_dir: Path, given: str | None = None) -> None:
        self.path = Path(store_dir) / KEY_FILE
        self.given = parse_public_key(given) if given else None

    def stored(self) -> str | None:
        try:
            return parse_public_key(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("pinned release key unreadable; refusing updates", file=str(self.path), error=str(exc))
            return "unusable"

    def pinned(self) -> str | None:
        return self.given or self.stored()

    def learn(self, offered: object) -> None:
        """The hub's key from verify: pinned if none is yet, otherwise only compared."""
        if not isinstance(offered, str) or not offered:
            return
        try:
            offered = parse_public_key(offered)
        except ValueError:
            log.warning("the hub's release public key is malformed; ignored")
            return
        pinned = self.pinned()
        if pinned is None:
            write_private(self.path, (offered + "\n").encode())
            log.info("pinned the hub's release public key", file=str(self.path))
        elif pinned != offered:
            log.warning("the hub offers another release public key than the pinned one; keeping the pinned key")


def check_release(public_b64: str, data: bytes, version: str, sha256_hex: str, signature_b64: str) -> None:
    """UpdateRefused unless ``data`` is the release the pinned key signed."""
    # Imported on use, like everything an update needs: an idle agent should not carry them (its RSS).
    import hashlib
    import io
    import zipfile
    from email.parser import HeaderParser

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256_hex:
        raise UpdateRefused(f"the downloaded wheel's SHA-256 is {digest}, not the release's {sha256_hex}: refused")
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64))
        key.verify(base64.b64decode(signature_b64, validate=True), signed_message(version, digest))
    except (InvalidSignature, ValueError, binascii.Error):
        raise UpdateRefused(f"the signature of release {version} does not verify with the pinned release public key "
                            "(signed by another key, or not signed): refused") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            [name] = [n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            headers = HeaderParser().parsestr(wheel.read(name).decode("utf-8", "replace"))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UpdateRefused("the release is not a wheel") from None
    if re.sub(r"[-_.]+", "-", headers.get("Name", "")).lower() != "relay-agent" or headers.get("Version") != version:
        raise UpdateRefused(f"the wheel is {headers.get('Name')} {headers.get('Version')}, not relay-agent {version}")


class Updater:
    def __init__(self, hub: HubClient, store_dir: Path, install_root: Path, key: ReleaseKey, *, enabled: bool = True,
                 deadline_s: float = 60.0, on_installed: Callable[[], None] = lambda: None) -> None:
        self.on_installed = on_installed
        self.hub = hub
        self.store_dir = Path(store_dir)
        self.root = Path(install_root)
        self.key = key
        self.enabled = enabled
        self.deadline_s = deadline_s

    def run(self, command: dict, running: RunningCommand) -> ExecResult | None:
        """An update_agent command: a result when it ends here, None once the restart into it is prepared."""
        if not self.enabled:
            return ExecResult.refused("this relay agent was started with --no-self-update: it refuses every update")
        meta = command.get("agentUpdate")
        version, sha, signature, url = (meta.get(k) if isinstance(meta, dict) else None
                                        for k in ("version", "sha256", "signature", "url"))
        if not (isinstance(version, str) and VERSION.match(version) and isinstance(sha, str) and SHA256.match(sha)
                and isinstance(signature, str) and isinstance(url, str) and url.startswith("/relay/")):
            return ExecResult.refused("malformed agentUpdate: version, sha256, signature and url are needed")
        if version == __version__:
            return ExecResult(status="completed", exit_code=0, output=f"relay agent {version} runs already\n")
        public = self.key.pinned()
        if public in (None, "unusable"):
            return ExecResult.refused("no release public key is pinned (give --release-public-key, or use a hub "
                                      "that has an agent release key): refusing the update")
        started = time.monotonic()
        try:
            data = self.hub.download(url, MAX_WHEEL_BYTES)
            check_release(public, data, version, sha, signature)
            target = self._install(version, data)
        except (HubError, UpdateRefused) as exc:
            log.warning("update refused", commandId=running.command_id, version=version, reason=str(exc))
            return ExecResult(status="failed", error=f"update to {version} refused: {exc}",
                              duration_ms=int((time.monotonic() - started) * 1000))
        previous = code_dir()
        launcher.point_current(self.root, target)
        launcher.write_marker(self.store_dir, {
            "state": "trial", "commandId": running.command_id, "attempt": running.attempt,
            "fromVersion": __version__, "toVersion": version, "newDir": str(target), "previousDir": str(previous),
            "deadlineS": self.deadline_s, "startedAt": time.time()})
        log.info("update installed; restarting into it", commandId=running.command_id, fromVersion=__version__,
                 toVersion=version, directory=str(target))
        self.on_installed()
        return None

    def _install(self, version: str, data: bytes) -> Path:
        import shutil
        import subprocess  # nosec B404 - pip installs a verified release
        import tempfile

        versions = self.root / "versions"
        versions.mkdir(parents=True, exist_ok=True, mode=0o755)
        target = versions / version
        with tempfile.TemporaryDirectory(dir=versions, prefix=f".{version}.") as work:
            wheel = Path(work) / f"relay_agent-{version}-py3-none-any.whl"
            wheel.write_bytes(data)
            into = Path(work) / "install"
            done = subprocess.run(  # nosec B603 - fixed argv; the wheel's hash and signature are verified first
                [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
                 "-q", "--target", str(into), str(wheel)],
                capture_output=True, text=True, timeout=PIP_TIMEOUT_S, stdin=subprocess.DEVNULL)
            if done.returncode != 0 or not (into / "relay_agent" / "__init__.py").exists():
                raise UpdateRefused(f"pip install failed: {(done.stderr or done.stdout).strip()[-500:]}")
            if target.exists():
                shutil.rmtree(target)
            os.replace(into, target)
        return target


def after_verify(store_dir: Path, under_launcher: bool) -> tuple[RunningCommand, ExecResult] | None:
    """After this process verified with the hub: the pending update's outcome to report, if there is one."""
    marker = launcher.read_marker(Path(store_dir))
    if not marker or not marker.get("commandId"):
        return None
    attempt = marker.get("attempt")
    running = RunningCommand(str(marker["commandId"]), attempt if isinstance(attempt, int) else None)
    old, new, state = marker.get("fromVersion"), marker.get("toVersion"), marker.get("state")
    started = marker.get("startedAt")
    duration = int((time.time() - started) * 1000) if isinstance(started, (int, float)) else 0
    if state == "trial" and new == __version__:
        result = ExecResult(status="completed", exit_code=0, duration_ms=duration,
                            output=f"relay agent updated from {old} to {new}; it verified with the hub\n")
        if under_launcher:
            launcher.write_marker(Path(store_dir), {**marker, "state": "verified"})
        else:
            launcher.remove_marker(Path(store_dir))
        log.info("update verified", fromVersion=old, toVersion=new)
        return running, result
    if state == "verified":
        launcher.remove_marker(Path(store_dir))
        return None
    reason = marker.get("reason") if state == "failed" else (
        f"the agent restarted as version {__version__} before version {new} verified with the hub")
    launcher.remove_marker(Path(store_dir))
    log.warning("update rolled back", fromVersion=old, toVersion=new, reason=str(reason))
    return running, ExecResult(status="failed", duration_ms=duration,
                               error=f"update to {new} rolled back to {__version__}: {reason}")


def exec_launcher(store_dir: Path, install_root: Path) -> None:
    """Replace this process with the launcher, from this (old) version's code, keeping the process id."""
    base = os.environ.get(launcher.ENV_BASE_PATH, os.environ.get("PYTHONPATH", ""))
    env = {**os.environ, launcher.ENV_STORE: str(store_dir), launcher.ENV_ROOT: str(install_root),
           launcher.ENV_CODE: str(code_dir()), launcher.ENV_BASE_PATH: base,
           "PYTHONPATH": os.pathsep.join(p for p in (str(code_dir()), base) if p)}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "relay_agent.launcher", *sys.argv[1:]], env)  # nosec B606
