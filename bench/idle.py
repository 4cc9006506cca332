"""Scenario 3 of SPEC §9: many idle relays long-polling one hub process (issue 20: 10,000 of them).

The clients (``bench.idle_clients``) ask for the bundled agent's default hold
(``AgentSettings.long_poll_wait_ms``), each with its own key. Their first hold is
a random part of it, as if the relays had started at random times: the window
then sees the steady rate of cycles (relays / hold), not a ramp whose holds all
end after it.
"""

from __future__ import annotations

import json
import os
import time

from relay_agent.settings import AgentSettings

from bench import profiling
from bench.measure import CpuWindow, percentile, rss_mb
from bench.report import Row
from bench.scenarios import DJANGO, Context, _stop_all, http_rtts, ms
from bench.services import BIN, Proc, raise_nofile, wait_for

RAMP_PER_S = 100.0  # first contact writes events and signs of life: slower than a poll
TARGET_HELD = 10_000
TARGET_RSS_MB = 600
TARGET_CPU = 10.0  # % of one core
TARGET_RTT_RATIO = 2.0


def idle(ctx: Context) -> None:
    from django.db import transaction

    stack, n = ctx.stack, ctx.sizes.idle_relays
    nofile = raise_nofile()
    if nofile < n + 1000:
        ctx.report.notes.append(f"idle relays: open-file limit {nofile} is below {n} relays plus the hub's own")
    wait_ms = AgentSettings.long_poll_wait_ms
    started = time.monotonic()
    with transaction.atomic():
        keys = [stack.issue(f"bench-idle-{i:05d}").api_key for i in range(n)]
    issue_s = time.monotonic() - started
    keys_file = stack.work / "idle-keys.json"
    keys_file.write_text(json.dumps(keys))
    hub = clients = None
    try:
        hub = stack.hub("hub-idle")
        http_rtts(hub.url, 20)
        time.sleep(2)
        with CpuWindow([hub.pid]) as base_cpu:
            time.sleep(5 if not ctx.quick else 1)
        base_rss = rss_mb(hub.pid)
        base_rtt = http_rtts(hub.url, 200, DJANGO)
        ramp_timeout = n / RAMP_PER_S + 60
        duration = ramp_timeout + ctx.sizes.idle_window + 180  # a bound; the bench stops them before
        clients = Proc("idle-clients", [str(BIN / "python"), "-m", "bench.idle_clients", str(keys_file),
                                        str(hub.port), str(duration), str(RAMP_PER_S), str(wait_ms)],
                       ctx.log_dir / "idle-clients.log").start()

        def stats() -> dict:
            clients.check_alive()
            lines = [line for line in clients.log.read_text().splitlines() if line.startswith("{")]
            return json.loads(lines[-1]) if lines else {}

        ramp_started = time.monotonic()
        try:
            wait_for(lambda: stats().get("ready", 0) >= n and stats().get("waiting", 0) >= n, ramp_timeout,
                     f"{n} relays to be long-polling", 0.5)
        except RuntimeError:
            # Not a crash: the hub holds fewer than asked for. Measure what it does hold.
            ctx.report.notes.append(f"idle relays: only {stats().get('ready', 0)} of {n} relays got their first "
                                    f"answer within {ramp_timeout:.0f} s")
        ramp_s = time.monotonic() - ramp_started
        waiting_min = n
        rss_max = 0.0
        before = stats()
        with CpuWindow([hub.pid]) as idle_cpu, CpuWindow([stack.postgres.proc.pid], tree=True) as pg_cpu:
            end = time.monotonic() + ctx.sizes.idle_window
            while time.monotonic() < end:
                time.sleep(1)
                waiting_min = min(waiting_min, stats().get("waiting", 0))
                rss_max = max(rss_max, rss_mb(hub.pid))
        final = stats()
        cycles = final.get("emptyLongpolls", 0) - before.get("emptyLongpolls", 0)
        try:
            loaded_rtt = http_rtts(hub.url, 200, DJANGO, max_s=15)
        except TimeoutError:  # not a crash: a hub too busy to answer in 30 s misses the target, and says so
            loaded_rtt = [30.0]
            ctx.report.notes.append("idle relays: a request through Django got no answer in 30 s while holding them")
        if ctx.sizes.profile:  # after the measured window: what the hub's "idle" CPU is spent on
            profiling.record_many({"hub-idle": hub.pid}, 10, ctx)
        rss = rss_mb(hub.pid)
        hub_fds = len(os.listdir(f"/proc/{hub.pid}/fd"))
    finally:
        _stop_all(clients, hub)

    errors = final.get("errors", {})
    if errors:
        ctx.report.notes.append(f"idle relays: client errors {errors}")
    sc = f"3 idle relays ({n} long-polling clients, 1 hub process)"
    held = waiting_min if not errors else min(waiting_min, n - sum(errors.values()))
    rtt, rtt_base = ms(percentile(loaded_rtt, 50)), ms(percentile(base_rtt, 50))
    ctx.report.add(
        Row(sc, "relays held (min over window)", held, "", "requested", n, target=f"≥ {TARGET_HELD:,}",
            met=held >= TARGET_HELD),
        Row(sc, "hub RSS with relays held", rss, "MB", "hub RSS, no relays", base_rss,
            target=f"≤ {TARGET_RSS_MB} MB", met=rss <= TARGET_RSS_MB),
        Row(sc, "hub RSS per held relay", 1024 * (rss - base_rss) / max(1, held), "KB"),
        Row(sc, "hub CPU while relays idle (1 core = 100%)", idle_cpu.percent, "%", "no relays", base_cpu.percent,
            target=f"≤ {TARGET_CPU:.0f}%", met=idle_cpu.percent <= TARGET_CPU),
        Row(sc, "postgres CPU meanwhile (all backends)", pg_cpu.percent, "%", ratio_kind="none"),
        Row(sc, "hub HTTP RTT through Django p50 while holding them", rtt, "ms", "no relays", rtt_base,
            target=f"≤ {TARGET_RTT_RATIO:.0f}× empty hub", met=rtt <= TARGET_RTT_RATIO * rtt_base),
        Row(sc, f"long-polls held to the end and answered empty, per second (hold {wait_ms / 1000:.0f} s)",
            cycles / ctx.sizes.idle_window, "/s", "relays / hold", n / (wait_ms / 1000)),
        # What one idle relay costs the hub: the CPU target is then a bound on relays / hold.
        Row(sc, "hub CPU per answered long-poll", 10 * idle_cpu.percent * ctx.sizes.idle_window / max(1, cycles),
            "ms", ratio_kind="none"),
    )
    ctx.report.notes.append(
        f"idle relays: issued {n} keys in {issue_s:.1f} s; ramp {ramp_s:.1f} s at {RAMP_PER_S:.0f}/s; "
        f"hub fds {hub_fds}; RSS max {rss_max:.0f} MB; {cycles / ctx.sizes.idle_window:.1f} long-polls "
        f"answered/s in the window; keep-alive bytes seen {final.get('keepalives', 0)}; long-poll hold min/max "
        f"{final.get('holdMinS')}/{final.get('holdMaxS')} s (first holds, a random part of it, left out)")
