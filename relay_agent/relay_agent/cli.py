"""`relay-agent API_KEY HUB_URL [options]` and `relay-agent credentials add|list|remove`."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from . import __version__

DEFAULT_STORE_DIR = "~/.relay-agent"
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
# Options that take a value, so the subcommand can be found among the arguments.
_VALUE_OPTIONS = {
    "--poll-interval",
    "--heartbeat-interval",
    "--metrics-interval",
    "--log-level",
    "--store-dir",
    "--concurrency",
    "--shared-secret",
    "--shutdown-grace",
    "--known-hosts",
    "--max-output",
    "--ssh-idle-timeout",
    "--long-poll-wait",
}


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


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def agent_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay-agent",
        description="relayhub relay agent: claims commands from the hub, runs them locally or over SSH, "
        "and reports the results.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""environment (each option can also be set there; options win):
  RELAY_API_KEY, RELAY_HUB_URL, RELAY_POLL_INTERVAL_MS, RELAY_HEARTBEAT_INTERVAL_MS,
  RELAY_METRICS_INTERVAL_MS, RELAY_LOG_LEVEL, RELAY_STORE_DIR, RELAY_CONCURRENCY,
  RELAY_SHARED_SECRET, RELAY_SHUTDOWN_GRACE, RELAY_KNOWN_HOSTS (colon-separated),
  RELAY_MAX_OUTPUT, RELAY_SSH_IDLE_TIMEOUT, RELAY_LONG_POLL_WAIT_MS,
  RELAY_ALLOW_INSECURE_HTTP=1.
  RELAY_API_KEY_FILE and RELAY_SHARED_SECRET_FILE read the secret from a file.

credential store:
  relay-agent credentials add NAME --type ssh_key|password|api_key [--target-host H[:PORT]]
                              [--username U] (--value-file F | --value-stdin)
      An ssh_key or password credential is offered only to the SSH target its --target-host
      names (every port of H, or only PORT; IPv6 as [ADDR]:PORT); without one, to no target.
  relay-agent credentials list [--json]
  relay-agent credentials remove NAME
""",
    )
    parser.add_argument("api_key", nargs="?", metavar="API_KEY", help="relay API key (or RELAY_API_KEY)")
    parser.add_argument("hub_url", nargs="?", metavar="HUB_URL", help="hub base URL (or RELAY_HUB_URL)")
    parser.add_argument("--version", action="version", version=f"relay-agent {__version__}")
    parser.add_argument(
        "--poll-interval",
        type=_positive_int,
        metavar="MS",
        help="plain polling interval for hubs without long-poll (default 5000)",
    )
    parser.add_argument(
        "--heartbeat-interval", type=_positive_int, metavar="MS", help="heartbeat interval (default 30000)"
    )
    parser.add_argument(
        "--metrics-interval",
        type=_positive_int,
        metavar="MS",
        help="status and metrics report interval (default 60000)",
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], type=str.lower, help="default info"
    )
    parser.add_argument(
        "--store-dir", metavar="DIR", help=f"credential store, spool and config (default {DEFAULT_STORE_DIR})"
    )
    parser.add_argument("--concurrency", type=_positive_int, metavar="N", help="commands run in parallel (default 4)")
    parser.add_argument("--shared-secret", metavar="S", help="transport secret to decrypt shared credentials")
    parser.add_argument(
        "--shutdown-grace",
        type=_non_negative_float,
        metavar="S",
        help="seconds running commands get to finish on SIGTERM (default 30)",
    )
    parser.add_argument(
        "--known-hosts",
        action="append",
        metavar="PATH",
        help=f"known_hosts file for SSH targets; repeatable (default {DEFAULT_KNOWN_HOSTS})",
    )
    parser.add_argument(
        "--max-output", type=_positive_int, metavar="CHARS", help="output kept per stream (default 1048576)"
    )
    parser.add_argument(
        "--ssh-idle-timeout",
        type=_non_negative_float,
        metavar="S",
        help="close SSH connections idle this long (default 300)",
    )
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="accept a plain http:// HUB_URL on a host other than loopback: the API key, results "
        "and credential pushes then cross the network unencrypted",
    )
    parser.add_argument(
        "--long-poll-wait",
        type=_positive_int,
        metavar="MS",
        help="how long the hub may hold a long-poll (default 25000, at most 30000)",
    )
    return parser


def credentials_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store-dir", metavar="DIR", default=argparse.SUPPRESS, help=f"default {DEFAULT_STORE_DIR} or RELAY_STORE_DIR"
    )
    parser = argparse.ArgumentParser(
        prog="relay-agent credentials", parents=[common], description="Manage the local encrypted credential store."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", parents=[common], help="add or replace a credential")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--type", dest="credential_type", required=True, choices=["ssh_key", "password", "api_key"])
    add.add_argument(
        "--target-host",
        metavar="H[:PORT]",
        help="the SSH target this credential is bound to: HOST (any port), HOST:PORT or [IPv6]:PORT. "
        "An ssh_key or password credential is offered only to that target, and without --target-host "
        "to no target at all",
    )
    add.add_argument("--username", metavar="U", help="offer it only for logins as this user")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--value-file", metavar="F", help="read the secret from this file")
    source.add_argument("--value-stdin", action="store_true", help="read the secret from standard input")
    listing = sub.add_parser("list", parents=[common], help="list credentials (metadata only)")
    listing.add_argument("--json", action="store_true", help="print the inventory as JSON")
    remove = sub.add_parser("remove", parents=[common], help="remove a credential")
    remove.add_argument("name", metavar="NAME")
    return parser


def _credentials_index(argv: list[str]) -> int | None:
    """Where `credentials` stands as the first positional argument, if it does."""
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in _VALUE_OPTIONS:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return index if arg == "credentials" else None
    return None


def _store_dir(option: str | None) -> Path:
    return Path(option or _env("RELAY_STORE_DIR", DEFAULT_STORE_DIR) or DEFAULT_STORE_DIR).expanduser()


def credentials_main(argv: list[str]) -> int:
    args = credentials_parser().parse_args(argv)
    from .store import SSH_TYPES, CredentialStore, CredentialStoreError

    store = CredentialStore(_store_dir(getattr(args, "store_dir", None)))
    try:
        if args.action == "add":
            raw = sys.stdin.read() if args.value_stdin else Path(args.value_file).read_text()
            # A trailing newline from `echo` or an editor is not part of a password or token.
            value = raw if args.credential_type == "ssh_key" else raw.rstrip("\r\n")
            cred = store.put(args.name, args.credential_type, value, args.target_host, args.username)
            print(f"stored credential {cred.name} ({cred.credential_type})")
            if cred.credential_type in SSH_TYPES and not cred.target_host:
                print(
                    f"relay-agent: warning: {cred.name} is bound to no host, so it is offered to no SSH target; "
                    "add it again with --target-host HOST or HOST:PORT",
                    file=sys.stderr,
                )
        elif args.action == "list":
            creds = store.all()
            if args.json:
                print(json.dumps(store.inventory(), indent=2))
            elif not creds:
                print("no credentials")
            else:
                rows = [("NAME", "TYPE", "TARGET HOST", "USERNAME", "MODE", "UPDATED")]
                for c in creds:
                    updated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.last_updated_at / 1000))
                    rows.append(
                        (c.name, c.credential_type, c.target_host or "-", c.username or "-", c.storage_mode, updated)
                    )
                widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
                for row in rows:
                    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        elif args.action == "remove":
            if not store.remove(args.name):
                print(f"relay-agent: no credential named {args.name}", file=sys.stderr)
                return 1
            print(f"removed credential {args.name}")
    except (CredentialStoreError, OSError) as exc:
        print(f"relay-agent: error: {exc}", file=sys.stderr)
        return 1
    return 0


def agent_main(argv: list[str]) -> int:
    parser = agent_parser()
    args = parser.parse_args(argv)
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

    from . import logs
    from .agent import Agent, AgentSettings

    log_level = (args.log_level or _env("RELAY_LOG_LEVEL", "info") or "info").lower()
    if log_level not in ("debug", "info", "warning", "error"):
        parser.error(f"RELAY_LOG_LEVEL must be debug, info, warning or error, not {log_level!r}")
    logs.configure(log_level)
    shared_secret = args.shared_secret or _env("RELAY_SHARED_SECRET")
    logs.register_secret(api_key)
    logs.register_secret(shared_secret)
    settings = AgentSettings(
        api_key=api_key,
        hub_url=hub_url,
        store_dir=_store_dir(args.store_dir),
        shared_secret=shared_secret,
        concurrency=args.concurrency or int(_env_number("RELAY_CONCURRENCY", 4, int)),
        poll_interval_ms=args.poll_interval or int(_env_number("RELAY_POLL_INTERVAL_MS", 5000, int)),
        heartbeat_interval_ms=args.heartbeat_interval or int(_env_number("RELAY_HEARTBEAT_INTERVAL_MS", 30_000, int)),
        metrics_interval_ms=args.metrics_interval or int(_env_number("RELAY_METRICS_INTERVAL_MS", 60_000, int)),
        shutdown_grace=args.shutdown_grace
        if args.shutdown_grace is not None
        else _env_number("RELAY_SHUTDOWN_GRACE", 30.0, float),
        known_hosts=[Path(p).expanduser() for p in known_hosts],
        max_output=args.max_output or int(_env_number("RELAY_MAX_OUTPUT", 1024 * 1024, int)),
        ssh_idle_timeout=args.ssh_idle_timeout
        if args.ssh_idle_timeout is not None
        else _env_number("RELAY_SSH_IDLE_TIMEOUT", 300.0, float),
        long_poll_wait_ms=min(30_000, args.long_poll_wait or int(_env_number("RELAY_LONG_POLL_WAIT_MS", 25_000, int))),
    )
    if settings.concurrency <= 0:
        parser.error("RELAY_CONCURRENCY must be positive")
    from .config import ConfigError
    from .store import CredentialStoreError

    try:
        agent = Agent(settings)
    except (ConfigError, CredentialStoreError, OSError) as exc:
        print(f"relay-agent: error: {exc}", file=sys.stderr)
        return 1
    return agent.run()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    index = _credentials_index(argv)
    if index is not None:
        return credentials_main(argv[:index] + argv[index + 1 :])
    return agent_main(argv)


if __name__ == "__main__":
    sys.exit(main())
