"""The hub's Prometheus metrics that are counted where things happen, and how they are read back.

Every layer counts into the objects below (``count_on_commit`` for what a
transaction does); ``relayhub.metrics_view`` serves them at ``/metrics``
beside the gauges it reads from the database when scraped.

**Several processes.** With ``PROMETHEUS_MULTIPROC_DIR`` set before
prometheus-client is first imported, each process writes its values to
files of its own there (``counter_<pid>.db``, ...) and a scrape adds up the
files of every process, alive or dead: a uvicorn worker that died or was
replaced still counts what it counted. ``python -m relayhub.serve`` empties
the directory of dead processes' files before uvicorn starts its workers
(or makes a fresh one), so counters start at zero with the server. Gauges of
what a process holds now (long-polls) add up only the live processes: the
files of a process that has gone are dropped when scraped (``reap_dead``).
Without the variable, values live in this process alone, which is right for
one process and wrong for several (``several_processes_without_directory``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import transaction
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, multiprocess,
                               values)
from prometheus_client.registry import Collector

from relayhub.web import metrics_files

DIRECTORY_VARIABLE = metrics_files.VARIABLE
# Chosen by prometheus-client from the variable when it was first imported, which may have been before now.
MULTIPROCESS: bool = values.ValueClass._multiprocess

if MULTIPROCESS:
    os.makedirs(os.environ[DIRECTORY_VARIABLE], mode=0o700, exist_ok=True)
    # Live-gauge files under this pid are a dead predecessor's (the pid was reused): they are not ours.
    multiprocess.mark_process_dead(os.getpid())

# The same samples in both modes: multiprocess mode has no ``*_created`` series.
disable_created_metrics()
# Counted in-process; in multiprocess mode the registry is only a list: scrapes read the files.
REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds from queued to claimed: a relay that polls promptly claims in milliseconds; a machine whose relay is
# gone waits up to the queue's time to live (an hour by default).
QUEUE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# Seconds from claimed to finished: a command's own run time, up to its timeout.
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)

COMMANDS_QUEUED = Counter(
    "relayhub_commands_queued", "Commands queued (every command created, batch copies included).",
    registry=REGISTRY)
COMMANDS_FINISHED = Counter(
    "relayhub_commands_finished", "Commands that reached a final status, by that status.", ["status"],
    registry=REGISTRY)
QUEUE_TO_CLAIM = Histogram(
    "relayhub_command_queue_to_claim_seconds", "Time from a command's queueing to its claim by a relay.",
    buckets=QUEUE_BUCKETS, registry=REGISTRY)
CLAIM_TO_FINISH = Histogram(
    "relayhub_command_claim_to_finish_seconds", "Time from a command's claim to its final status.",
    buckets=RUN_BUCKETS, registry=REGISTRY)
RELAY_EVENTS = Counter(
    "relayhub_relay_connection_events", "Relay connection events (connected, heartbeat_lost).", ["event"],
    registry=REGISTRY)
CONFIG_PUSHES = Counter(
    "relayhub_config_pushes", "Config pushes entering a status: pending (queued or re-queued), sent, acked, failed.",
    ["status"], registry=REGISTRY)
LONGPOLLS_HELD = Gauge(
    "relayhub_longpolls_held", "Relay long-polls (POST /relay/commands/next) waiting now.",
    multiprocess_mode="livesum", registry=REGISTRY)
REQUESTS = Counter(
    "relayhub_http_requests", "HTTP requests answered, by URL route pattern (never the raw path), method and status.",
    ["route", "method", "status"], registry=REGISTRY)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"


def count_on_commit(count: Callable[[], None]) -> None:
    """Count once the current transaction commits (at once outside one): work rolled back is not counted."""
    transaction.on_commit(count)


def command_queued(count: int = 1) -> None:
    if count:
        count_on_commit(lambda: COMMANDS_QUEUED.inc(count))


def commands_claimed(waits: Iterable[float]) -> None:
    """Seconds each newly claimed command had waited since it was queued."""
    waits = list(waits)
    if waits:
        count_on_commit(lambda: [QUEUE_TO_CLAIM.observe(max(wait, 0.0)) for wait in waits])


def commands_finished(ended: Iterable[tuple[str, datetime | None]], now: datetime) -> None:
    """``(status, claimed_at)`` of commands that reached a final status at ``now`` (``claimed_at`` None: never
    claimed)."""
    ended = list(ended)
    if not ended:
        return

    def count() -> None:
        for status, claimed_at in ended:
            COMMANDS_FINISHED.labels(status).inc()
            if claimed_at is not None:
                CLAIM_TO_FINISH.observe(max((now - claimed_at).total_seconds(), 0.0))

    count_on_commit(count)


def relay_event(event: str) -> None:
    count_on_commit(lambda: RELAY_EVENTS.labels(event).inc())


def config_pushes(status: str, count: int = 1) -> None:
    if count:
        count_on_commit(lambda: CONFIG_PUSHES.labels(status).inc(count))


_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^()]*\)")


@functools.lru_cache(maxsize=1024)
def route_label(route: str | None) -> str:
    """A route pattern as people read it: ``api/v1/commands/<pk>/`` for DRF's ``api/v1/commands/(?P<pk>[^/.]+)/$``,
    ``relay/commands/next`` for ``^relay/commands/next/?$``."""
    if route is None:  # refused before routing (413), or no route matched
        return UNMATCHED
    label = _NAMED_GROUP.sub(r"<\1>", route).removeprefix("^").removesuffix("$").removesuffix("/?")
    return label or "/"


def request_answered(route: str | None, method: str, status: int) -> None:
    REQUESTS.labels(route_label(route), method if method in METHODS else "other", str(status)).inc()


# -- reading them back ---------------------------------------------------------

def reap_dead(directory: str | None = None) -> list[int]:
    """Drop the live-gauge files of processes that have gone (their long-polls ended with them)."""
    directory = directory or os.environ[DIRECTORY_VARIABLE]
    dead = metrics_files.dead_pids(directory, "gauge_live*.db")
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


def several_processes_without_directory() -> bool:
    """A uvicorn worker (a child of the multiprocessing kind) keeping its counts to itself: a scrape would show
    one worker's share as the total."""
    import multiprocessing

    return not MULTIPROCESS and multiprocessing.parent_process() is not None


def collectors() -> list[Collector]:
    """What a scrape reads of the in-process metrics: every process's files, or this process's values."""
    if not MULTIPROCESS:
        return [REGISTRY]
    reap_dead()
    return [multiprocess.MultiProcessCollector(None)]
