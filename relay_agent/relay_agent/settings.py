"""The agent's settings, and how `relay-agent` resolves them: options, then RELAY_* variables, then defaults."""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .output import DEFAULT_HEAD_FRACTION, DEFAULT_MAX_OUTPUT, parse_head

DEFAULT_STORE_DIR = "~/.relay-agent"
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


@dataclass
class AgentSettings:
    api_key: str
    hub_url: str
    store_dir: Path
    shared_secret: str | None = None
    # The slot count: fixed when given (--concurrency), else adapting between the floor and max_concurrency.
    concurrency: int = 4
    adaptive_concurrency: bool = False
    max_concurrency: int = 32
    poll_interval_ms: int = 5000
    heartbeat_interval_ms: int = 30_000
    metrics_interval_ms: int = 60_000
    shutdown_grace: float = 30.0
    known_hosts: list[Path] = field(default_factory=list)
    max_output: int = DEFAULT_MAX_OUTPUT
    # A float is a fraction of max_output, an int a byte count: the head kept (and streamed live) before the tail.
    max_output_head: float | int = DEFAULT_HEAD_FRACTION
    ssh_idle_timeout: float = 300.0
    long_poll_wait_ms: int = 25_000
    output_flush_ms: int = 200
    # While commands run, heartbeat at least this often: it is how a silent command learns of a cancel.
    busy_heartbeat_ms: int = 2000
    # Send the key without first checking that GET /relay/hello names a relayhub: for hubs without
    # that route (the original hub).
    skip_hub_check: bool = False
    # Self-update (selfupdate.py): refuse it all; the pinned release key given at start; where versions go.
    no_self_update: bool = False
    release_public_key: str | None = None
    install_root: Path | None = None
    update_deadline_s: float = 60.0


def _env(name: str, default: str | None = None) -> str | None:
    """RELAY_X, or the contents of the file named by RELAY_X_FILE (for secrets kept out of the environment)."""
    if os.environ.get(name):
        return os.environ[name]
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return default


def _env_number(name: str, default: float, cast: Callable[[str], float]) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return cast(raw)
    except ValueError:
        raise SystemExit(f"relay-agent: error: {name} must be a number, not {raw!r}") from None


def _is_loopback(url: str) -> bool:
    """True for a URL on this machine only: 127.0.0.0/8, ::1 or localhost."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def store_dir(option: str | None) -> Path:
    return Path(option or _env("RELAY_STORE_DIR", DEFAULT_STORE_DIR) or DEFAULT_STORE_DIR).expanduser()


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[AgentSettings, str]:
    """The settings and the log level; an unusable value ends the program with `parser.error` or SystemExit."""
    if args.api_key and not args.hub_url and args.api_key.startswith(("http://", "https://")):
        # `relay-agent URL` with the key in RELAY_API_KEY, which keeps it out of `ps`.
        args.api_key, args.hub_url = None, args.api_key
    api_key = args.api_key or _env("RELAY_API_KEY")
    hub_url = args.hub_url or _env("RELAY_HUB_URL")
    if not api_key or not hub_url:
        parser.error("API_KEY and HUB_URL are required (arguments or RELAY_API_KEY / RELAY_HUB_URL)")
    if not hub_url.startswith(("http://", "https://")):
        parser.error(f"HUB_URL must start with http:// or https://, not {hub_url!r}")
    allow_http = args.allow_insecure_http or (_env("RELAY_ALLOW_INSECURE_HTTP") or "").lower() in ("1", "true", "yes")
    if hub_url.startswith("http://") and not allow_http and not _is_loopback(hub_url):
        parser.error(
            f"refusing plain http:// hub URL for {urlsplit(hub_url).hostname or '?'}: use https://, "
            "or pass --allow-insecure-http (RELAY_ALLOW_INSECURE_HTTP=1) to send the API key unencrypted"
        )
    known_hosts = args.known_hosts or [p for p in (_env("RELAY_KNOWN_HOSTS") or DEFAULT_KNOWN_HOSTS).split(":") if p]
    log_level = (args.log_level or _env("RELAY_LOG_LEVEL", "info") or "info").lower()
    if log_level not in ("debug", "info", "warning", "error"):
        parser.error(f"RELAY_LOG_LEVEL must be debug, info, warning or error, not {log_level!r}")
    shared_secret = args.shared_secret or _env("RELAY_SHARED_SECRET")
    skip_hub_check = args.skip_hub_check or (_env("RELAY_SKIP_HUB_CHECK") or "").lower() in ("1", "true", "yes")
    settings = AgentSettings(
        api_key=api_key,
        hub_url=hub_url,
        store_dir=store_dir(args.store_dir),
        shared_secret=shared_secret,
        concurrency=args.concurrency or int(_env_number("RELAY_CONCURRENCY", 4, int)),
        adaptive_concurrency=not (args.concurrency or _env("RELAY_CONCURRENCY")),
        max_concurrency=args.max_concurrency or int(_env_number("RELAY_MAX_CONCURRENCY", 32, int)),
        poll_interval_ms=args.poll_interval or int(_env_number("RELAY_POLL_INTERVAL_MS", 5000, int)),
        heartbeat_interval_ms=args.heartbeat_interval or int(_env_number("RELAY_HEARTBEAT_INTERVAL_MS", 30_000, int)),
        metrics_interval_ms=args.metrics_interval or int(_env_number("RELAY_METRICS_INTERVAL_MS", 60_000, int)),
        shutdown_grace=args.shutdown_grace
        if args.shutdown_grace is not None
        else _env_number("RELAY_SHUTDOWN_GRACE", 30.0, float),
        known_hosts=[Path(p).expanduser() for p in known_hosts],
        max_output=args.max_output or int(_env_number("RELAY_MAX_OUTPUT", DEFAULT_MAX_OUTPUT, int)),
        max_output_head=args.max_output_head
        if args.max_output_head is not None
        else _env_number("RELAY_MAX_OUTPUT_HEAD", DEFAULT_HEAD_FRACTION, parse_head),
        ssh_idle_timeout=args.ssh_idle_timeout
        if args.ssh_idle_timeout is not None
        else _env_number("RELAY_SSH_IDLE_TIMEOUT", 300.0, float),
        long_poll_wait_ms=min(30_000, args.long_poll_wait or int(_env_number("RELAY_LONG_POLL_WAIT_MS", 25_000, int))),
        skip_hub_check=skip_hub_check,
    )
    settings.no_self_update = args.no_self_update or (_env("RELAY_NO_SELF_UPDATE") or "").lower() in (
        "1", "true", "yes")
    settings.release_public_key = args.release_public_key or _env("RELAY_RELEASE_PUBLIC_KEY")
    if settings.release_public_key:
        from .selfupdate import parse_public_key

        try:
            settings.release_public_key = parse_public_key(settings.release_public_key)
        except ValueError as exc:
            parser.error(str(exc))
    root = args.install_root or _env("RELAY_INSTALL_ROOT")
    settings.install_root = Path(root).expanduser() if root else settings.store_dir / "agent"
    settings.update_deadline_s = args.update_deadline if args.update_deadline is not None else _env_number(
        "RELAY_UPDATE_DEADLINE", 60.0, float)
    if settings.concurrency <= 0:
        parser.error("RELAY_CONCURRENCY must be positive")
    if settings.max_concurrency <= 0:
        parser.error("RELAY_MAX_CONCURRENCY must be positive")
    return settings, log_level
