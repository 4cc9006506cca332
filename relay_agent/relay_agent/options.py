"""The `relay-agent` command line: its options, and where a subcommand stands among them."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .output import parse_head
from .settings import DEFAULT_KNOWN_HOSTS, DEFAULT_STORE_DIR

# Options that take a value, so the subcommand can be found among the arguments.
_VALUE_OPTIONS = {
    "--poll-interval",
    "--heartbeat-interval",
    "--metrics-interval",
    "--log-level",
    "--store-dir",
    "--concurrency",
    "--max-concurrency",
    "--shared-secret",
    "--shutdown-grace",
    "--known-hosts",
    "--max-output",
    "--max-output-head",
    "--ssh-idle-timeout",
    "--long-poll-wait",
    "--release-public-key",
    "--install-root",
    "--update-deadline",
}


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


def _head(text: str) -> float | int:
    try:
        return parse_head(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's own width (shutil.get_terminal_size), found without importing shutil.

    argparse makes a formatter for each option it adds; its default imports shutil, which imports bz2 and
    lzma: memory a long-running agent would keep for nothing.
    """

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


def _columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def agent_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay-agent",
        description="relayhub relay agent: claims commands from the hub, runs them locally or over SSH, "
        "and reports the results.",
        formatter_class=_Formatter,
        epilog="""environment (each option can also be set there; options win):
  RELAY_API_KEY, RELAY_HUB_URL, RELAY_POLL_INTERVAL_MS, RELAY_HEARTBEAT_INTERVAL_MS,
  RELAY_METRICS_INTERVAL_MS, RELAY_LOG_LEVEL, RELAY_STORE_DIR, RELAY_CONCURRENCY,
  RELAY_SHARED_SECRET, RELAY_SHUTDOWN_GRACE, RELAY_KNOWN_HOSTS (colon-separated),
  RELAY_MAX_OUTPUT, RELAY_MAX_OUTPUT_HEAD, RELAY_SSH_IDLE_TIMEOUT, RELAY_LONG_POLL_WAIT_MS,
  RELAY_ALLOW_INSECURE_HTTP=1, RELAY_SKIP_HUB_CHECK=1, RELAY_NO_SELF_UPDATE=1,
  RELAY_RELEASE_PUBLIC_KEY, RELAY_INSTALL_ROOT, RELAY_UPDATE_DEADLINE.
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
    parser.add_argument("--concurrency", type=_positive_int, metavar="N",
                        help="commands run in parallel, fixed (default: adapts, from 4 up to --max-concurrency while "
                             "short commands queue)")
    parser.add_argument("--max-concurrency", type=_positive_int, metavar="N",
                        help="the most commands run in parallel when --concurrency is not given (default 32)")
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
        "--max-output",
        type=_positive_int,
        metavar="BYTES",
        help="output kept per stream, head and tail (default 1048576); past it the middle is skipped",
    )
    parser.add_argument(
        "--max-output-head",
        type=_head,
        metavar="FRACTION|BYTES",
        help="how much of --max-output is the head, streamed live: a fraction with a decimal point "
        "or a byte count (default 0.25); the rest keeps the last bytes",
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
        "--skip-hub-check",
        action="store_true",
        help="send the API key without first checking that GET /relay/hello answers as a relayhub; "
        "only for a hub without that route (the original hub)",
    )
    parser.add_argument(
        "--long-poll-wait",
        type=_positive_int,
        metavar="MS",
        help="how long the hub may hold a long-poll (default 25000, at most 30000)",
    )
    parser.add_argument(
        "--no-self-update",
        action="store_true",
        help="refuse every update_agent command (each fails saying so) and do not report the self_update capability",
    )
    parser.add_argument(
        "--release-public-key",
        metavar="BASE64",
        help="the hub's agent release public key (manage.py agent_release_key prints it); without it the agent "
        "pins the key the hub states on first verify (kept in STORE_DIR/release-public-key)",
    )
    parser.add_argument(
        "--install-root",
        metavar="DIR",
        help="where updates are installed: DIR/versions/VERSION, and DIR/current the one in use "
        "(default STORE_DIR/agent)",
    )
    parser.add_argument(
        "--update-deadline",
        type=_non_negative_float,
        metavar="S",
        help="a new version that has not verified with the hub this long after it started is rolled back "
        "(default 60)",
    )
    return parser


def credentials_index(argv: list[str]) -> int | None:
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
