"""6. Scale-out (issue 20): the throughput figure with more than one hub process, and cross-process wake-ups.

Throughput: the same agents and producer as scenario 2 (``scenarios._throughput_pass``) against one hub
process, one uvicorn with ``--workers 2``, and two hub processes behind ``bench/proxy.py`` (round robin per
connection), in that order, all on PostgreSQL with REDIS_URL set.

Wake-ups: one agent long-polls hub A; a command for it is queued through the operator API, either on hub A
itself (baseline) or on hub B, a second process on the same database, alternately. The figure is
``created_at`` → ``claimed_at`` of the command row (both hub clocks): the wake-up crossing from B to A
through the broker, plus A's claim. With Redis as the broker, with PostgreSQL NOTIFY (no REDIS_URL), and,
for context, with no broker (the long-poll re-reads the database every LONGPOLL_DB_POLL_MS).
"""

from __future__ import annotations

import http.client
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.measure import CpuWindow, percentile
from bench.report import Row
from bench.scenarios import Context, Pass, _kill_agents, _port_open, _stop_all, _throughput_pass, ms
from bench.services import BIN, Proc, free_port, wait_for
from bench.stack import Hub, merge_counts, merge_timings

NEXT = "POST /relay/commands/next"
BROKERS = {  # label: hub environment
    "Redis": {},
    "PostgreSQL NOTIFY": {"REDIS_URL": "", "RELAYHUB_NOTIFY_BACKEND": "postgres"},
    "no broker": {"REDIS_URL": "", "RELAYHUB_NOTIFY_BACKEND": "local"},
}
# Runs of each kind (same hub, other hub) per broker. The no-broker context takes a few only. The quick run
# has one broker, the one the hubs must be configured apart for: its start-ups are most of its time.
WAKEUP_RUNS = {"full": {"Redis": 300, "PostgreSQL NOTIFY": 300, "no broker": 40},
               "quick": {"PostgreSQL NOTIFY": 8}}


def _start_hubs(ctx: Context, name: str, count: int, env: dict[str, str] | None = None) -> list[Hub]:
    """`count` hub processes, started side by side."""
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(ctx.stack.hub, f"{name}-{i}", env) for i in range(count)]
    failed = [future.exception() for future in futures if future.exception() is not None]
    if failed:
        _stop_all(*[future.result() for future in futures if future.exception() is None])
        raise failed[0]
    return [future.result() for future in futures]


@dataclass
class ProxiedHubs:
    """Hub processes behind one bench/proxy.py, which gives each client connection the next one in turn."""

    hubs: list[Hub]
    proxy: Proc
    port: int
    split: list[int] = field(default_factory=list)  # requests each hub served, read as they are stopped

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, ctx: Context, name: str, count: int = 2) -> ProxiedHubs:
        hubs = _start_hubs(ctx, name, count)
        port = free_port()
        proxy = Proc("proxy", [str(BIN / "python"), "-m", "bench.proxy", str(port),
                               ",".join(str(h.port) for h in hubs), "--no-block"], ctx.log_dir / f"{name}-proxy.log")
        group = cls(hubs, proxy, port)
        try:
            proxy.start()
            wait_for(lambda: proxy.check_alive() or _port_open(port), 20, "the bench proxy")
        except BaseException:
            group.stop()
            raise
        return group

    @property
    def pid(self) -> int:
        return self.hubs[0].pid

    def counts(self) -> dict[str, int]:
        return merge_counts([hub.counts() for hub in self.hubs])

    def timings(self) -> dict[str, list[float]]:
        return merge_timings([hub.timings() for hub in self.hubs])

    def cpu_windows(self) -> dict[str, CpuWindow]:
        return {"hub": CpuWindow([hub.pid for hub in self.hubs], tree=True), "proxy": CpuWindow([self.proxy.pid])}

    def stop(self) -> None:
        try:
            self.split = [sum(hub.counts().values()) for hub in self.hubs if hub.alive()]
        except OSError:
            pass
        _stop_all(self.proxy, *self.hubs)


def scaleout(ctx: Context) -> None:
    started = time.monotonic()
    _throughput(ctx)
    middle = time.monotonic()
    _wakeups(ctx)
    ctx.report.notes.append(f"scale-out: the throughput passes took {middle - started:.0f} s, the wake-ups "
                            f"{time.monotonic() - middle:.0f} s, hub and agent start-ups included")


# -- throughput --------------------------------------------------------------------------------------------

def _throughput(ctx: Context) -> None:
    sizes = ctx.sizes
    concurrency = sizes.tp_concurrency
    seconds = sizes.tp_default_seconds if ctx.quick else sizes.tp_seconds  # quick: the shorter window
    cores = os.cpu_count() or 1
    started: list[Hub | ProxiedHubs] = []

    def workers(name: str) -> Hub:
        started.append(ctx.stack.hub(name, workers=2))
        return started[-1]

    def proxied(name: str) -> ProxiedHubs:
        started.append(ProxiedHubs.start(ctx, name))
        return started[-1]

    runs = {
        "1 hub process": _throughput_pass(ctx, concurrency, seconds, False, tag="s1-"),
        "one uvicorn --workers 2": _throughput_pass(ctx, concurrency, seconds, False, tag="w2-", start_hub=workers),
        "2 hub processes behind bench/proxy.py": _throughput_pass(
            ctx, concurrency, seconds, False, tag="p2-", start_hub=proxied),
    }
    one = runs["1 hub process"]
    sc = (f"6 scale-out: throughput ({sizes.tp_agents} agents --concurrency {concurrency}, Postgres, Redis, "
          f"{seconds:.0f} s each)")
    ctx.report.add(Row(sc, "commands/s, 1 hub process (as scenario 2)", one.rate, "/s"))
    for label, run in runs.items():
        if run is one:
            continue
        ctx.report.add(
            Row(sc, f"commands/s, {label}", run.rate, "/s", "1 hub process", one.rate),
            Row(sc, f"hub CPU, all its processes (1 core = 100%), {label}", run.cpu["hub"].percent, "%",
                "1 hub process", one.cpu["hub"].percent),
        )
    for label, run in runs.items():
        versus = "" if run is one else "1 hub process"
        ctx.report.add(
            Row(sc, f"CPU per command, all the bench's processes, {label}",
                _ours_ms(run), "ms", versus, _ours_ms(one) if versus else None),
            Row(sc, f"machine CPU busy (all {cores} cores), {label}", run.machine_busy, "%", versus,
                one.machine_busy if versus else None))
    for label, run in runs.items():
        ctx.report.notes.append(f"scale-out, {label}: {_per_command(run, cores)}")
        ctx.report.notes.append(f"scale-out, {label}: requests per command by route: {run.routes}; "
                                f"{run.failed} commands not completed; hub time per request by route, mean/max ms: "
                                f"{run.route_times}")
    ctx.report.notes.append("scale-out: requests each hub process served, whole pass: " + "; ".join(
        f"{label} {' / '.join(map(str, hub.split)) or '?'}" for label, hub in zip(list(runs)[1:], started, strict=True)))
    if any(getattr(hub, "lost_workers", None) for hub in started):
        ctx.report.notes.append("scale-out, --workers 2: uvicorn replaced a worker that missed its health check; "
                                "its request counts were lost with it (commands/s, from the database, stand)")


def _ours_ms(run: Pass) -> float:
    return 1000 * sum(window.seconds for window in run.cpu.values()) / max(1, run.commands)


def _per_command(run: Pass, cores: int) -> str:
    per = max(1, run.commands)
    parts = [f"{name} {1000 * window.seconds / per:.2f}" for name, window in run.cpu.items()]
    machine = 1000 * run.machine_busy / 100 * cores * run.elapsed / per
    ours = max(_ours_ms(run), 1e-6)
    return (f"{run.rate:.0f} commands/s, {run.requests / per:.2f} hub requests per command; CPU ms per command: "
            + ", ".join(parts) + f", together {ours:.2f} (agents include their `true` children; producer = the "
            f"bench process), so {cores} cores allow {1000 * cores / ours:.0f}/s; the whole machine was "
            f"{run.machine_busy:.0f}% busy, {machine:.2f} ms per command, {max(0.0, machine - ours):.2f} of it "
            "other processes (the machine is shared)")


# -- cross-process wake-ups ----------------------------------------------------------------------------------

def _operator_token() -> str:
    from django.contrib.auth import get_user_model

    from relayhub.web import operator_tokens

    user = get_user_model().objects.filter(username="bench-scaleout").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench-scaleout", "scaleout@example.invalid", None)
    return operator_tokens.issue(user)


@dataclass
class Wakeups:
    same: list[int] = field(default_factory=list)  # command ids queued on the agent's own hub
    cross: list[int] = field(default_factory=list)  # queued on the other hub


def _wakeups(ctx: Context) -> None:
    mode = "quick" if ctx.quick else "full"
    token = _operator_token()
    results = {}
    for label, env in BROKERS.items():
        runs = WAKEUP_RUNS[mode].get(label, 0)
        if runs:
            results[label] = _wakeup_pair(ctx, label, env, runs, token)
    sc = "6 scale-out: wake-up, queued on hub B → claimed by a relay long-polling hub A (hub clock)"
    for label, ids in results.items():
        same, cross = _stamps(ids.same), _stamps(ids.cross)
        n = len(ids.cross)
        for q in (50, 99):
            ctx.report.add(Row(sc, f"{label}: other process, p{q} ({n} runs)", ms(percentile(cross["claimed"], q)),
                               "ms", f"same process p{q}", ms(percentile(same["claimed"], q))))
        ctx.report.notes.append(
            f"wake-up, {label}: created→claimed max {ms(max(cross['claimed'])):.1f} ms across processes, "
            f"{ms(max(same['claimed'])):.1f} ms on the same one; created→started p50 "
            f"{ms(percentile(cross['started'], 50)):.1f} / {ms(percentile(same['started'], 50)):.1f} ms, "
            f"created→completed p50 {ms(percentile(cross['completed'], 50)):.1f} / "
            f"{ms(percentile(same['completed'], 50)):.1f} ms (other / same process)")


def _wakeup_pair(ctx: Context, label: str, env: dict[str, str], runs: int, token: str) -> Wakeups:
    """`runs` commands queued on hub A and as many on hub B, alternately, for an agent long-polling hub A."""
    stack = ctx.stack
    slug = label.split()[0].lower()
    machine = f"bench-wake-{slug}"
    hub_a, hub_b = _start_hubs(ctx, f"hub-wake-{slug}", 2, env)
    agent = None
    conns: dict[str, http.client.HTTPConnection] = {}
    try:
        agent = stack.agent(stack.issue(machine), hub_a.url, name=f"agent-wake-{slug}").start().wait_ready()
        wait_for(lambda: agent.check_alive() or hub_a.counts().get(NEXT, 0) > 0, 60, "the agent to long-poll")
        time.sleep(0.3)
        conns = {"A": _connection(hub_a), "B": _connection(hub_b)}
        ids = Wakeups()
        warmup = 1 if ctx.quick else 3  # the first of each: connections, caches
        for i in range(runs + warmup):
            for via in ("AB" if i % 2 else "BA"):
                pk = _queue_and_wait(conns[via], token, machine, hub_a, agent)
                if i >= warmup:
                    (ids.same if via == "A" else ids.cross).append(pk)
        return ids
    finally:
        for conn in conns.values():
            conn.close()
        if agent is not None:
            _kill_agents([agent])
        _stop_all(hub_a, hub_b)


def _connection(hub: Hub) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", hub.port, timeout=60)


def _queue_and_wait(conn: http.client.HTTPConnection, token: str, machine: str, hub_a: Hub, agent) -> int:  # noqa: ANN001
    """Queue `true` through the operator API of `conn`'s hub; return once it ran and the agent long-polls again."""
    from commands.choices import CommandStatus
    from commands.models import Command

    polls = hub_a.counts().get(NEXT, 0)
    body = json.dumps({"machine_id": machine, "command": "true", "timeout_ms": 30_000})
    conn.request("POST", "/api/v1/commands/", body, {"Authorization": f"Token {token}",
                                                     "Content-Type": "application/json"})
    response = conn.getresponse()
    answer = response.read()
    if response.status != 201:
        raise RuntimeError(f"POST /api/v1/commands/ answered {response.status}: {answer[:300]!r}")
    pk = json.loads(answer)["id"]
    rows = Command.objects.filter(pk=pk, status__in=CommandStatus.terminal())
    # Looked for every 10 ms only: the bench process shares the 2 cores with the hubs, the agent and postgres.
    wait_for(lambda: agent.check_alive() or rows.exists(), 60, f"command {pk} to end", 0.01)
    if not Command.objects.filter(pk=pk, status=CommandStatus.COMPLETED, exit_code=0).exists():
        raise RuntimeError(f"command {pk} did not complete with exit 0")
    # The long-poll that took it has answered; the next one has begun: give it time to park (subscribe).
    wait_for(lambda: agent.check_alive() or hub_a.counts().get(NEXT, 0) > polls, 60, "the next long-poll", 0.01)
    time.sleep(0.03)
    return pk


def _stamps(ids: list[int]) -> dict[str, list[float]]:
    """created → claimed / started / completed of each command, from its row (seconds)."""
    from commands.models import Command

    out: dict[str, list[float]] = {"claimed": [], "started": [], "completed": []}
    for created, *later in Command.objects.filter(pk__in=ids).values_list(
            "created_at", "claimed_at", "started_at", "completed_at"):
        for name, stamp in zip(out, later, strict=True):
            if stamp is not None:
                out[name].append((stamp - created).total_seconds())
    return out
