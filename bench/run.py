"""`make bench` / `make bench-quick`: start PostgreSQL, Redis, hubs, agents and sshd targets on 127.0.0.1,
run the five scenarios of SPEC §9 and the scale-out one (issue 20), and print every figure beside its
same-run baseline.

    python -m bench.run [--quick] [--only latency,throughput,idle,fanout,footprint,scaleout] [--no-results]

A full-size run (all scenarios, or those named by --only) appends a dated section to
bench/RESULTS.md. The quick run uses small
sizes, asserts nothing about speed, writes no results, and exits non-zero only when
a scenario crashes. Everything started is stopped on exit, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import shutil
import sys
import time
import traceback
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
# This tree's agent package first (the venv's editable install may name another checkout's).
if str(_ROOT / "relay_agent") not in sys.path:
    sys.path.insert(0, str(_ROOT / "relay_agent"))

from bench import idle, measure, scaleout, scenarios, services  # noqa: E402
from bench.report import RESULTS, Report, append_results  # noqa: E402
from bench.stack import Stack  # noqa: E402

HERE = Path(__file__).resolve().parent
# Scenario 3 has a module of its own (bench.idle); SPEC §9's order.
scenarios.SCENARIOS = {**dict(list(scenarios.SCENARIOS.items())[:2]), "idle": idle.idle,
                       **dict(list(scenarios.SCENARIOS.items())[2:])}
scenarios.SCENARIOS["scaleout"] = scaleout.scaleout  # in its own module; run last, after the SPEC §9 five


def git_head() -> str:
    """The commit the measured code is at (read-only git), with a mark when the tree has changes."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!Makefile",
                                ":!bench"], cwd=HERE.parent,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return f"{head}{' + uncommitted changes' if dirty else ''}" if head else "?"


def server_stack() -> str:
    """What uvicorn's "auto" picks in this environment (the hub runs from the same one)."""
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"{http}, {loop}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes; checks the bench runs, not the speed")
    parser.add_argument("--only", default="", help="comma-separated scenarios: " + ", ".join(scenarios.SCENARIOS))
    parser.add_argument("--no-results", action="store_true", help="do not append to bench/RESULTS.md")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles of the full run")
    parser.add_argument("--profile", action="store_true", help="take the py-spy profiles in quick mode too")
    parser.add_argument("--size", action="append", default=[], metavar="NAME=N",
                        help="override one size, e.g. --size tp_agents=20 (see scenarios.Sizes)")
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for every hub process, to try a setting (not for RESULTS.md runs)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(scenarios.SCENARIOS)
    unknown = set(chosen) - set(scenarios.SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")

    services.install_cleanup()
    nofile = services.raise_nofile()
    sizes = scenarios.QUICK if args.quick else scenarios.FULL
    if args.no_profile or args.profile:
        sizes = scenarios.Sizes(**{**sizes.__dict__, "profile": args.profile and not args.no_profile})
    overrides = {}
    for item in args.size:
        name, _, value = item.partition("=")
        if name not in scenarios.Sizes.__dataclass_fields__:
            parser.error(f"unknown size {name!r}")
        overrides[name] = type(getattr(sizes, name))(float(value) if name != "profile" else int(value))
    sizes = scenarios.Sizes(**{**sizes.__dict__, **overrides})
    hub_env = dict(item.partition("=")[::2] for item in args.hub_env)
    mode = "quick" if args.quick else "full"
    log_dir = HERE / "logs" / mode
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    load_before = measure.loadavg()
    started = time.monotonic()
    when = datetime.datetime.now().astimezone()
    print(f"bench ({mode}): load average {load_before}; open-file limit {nofile}; logs in {log_dir}", flush=True)

    report = Report()
    tools_bin = None
    try:
        from bench.tools import ensure_tools

        tools_bin = ensure_tools()
    except Exception as exc:  # noqa: BLE001 - the fan-out scenario reports it
        report.notes.append(f"bench tools not installed: {exc}")
    try:
        stack = Stack(log_dir, hub_env=hub_env).start()
        print(f"bench: PostgreSQL :{stack.postgres.port}, Redis :{stack.redis.port}, migrated in "
              f"{stack.setup_s:.1f} s", flush=True)
        ctx = scenarios.Context(stack=stack, sizes=sizes, report=report, tools_bin=tools_bin, log_dir=log_dir,
                                profile_dir=HERE / "profiles", quick=args.quick)
        for name in chosen:
            t0 = time.monotonic()
            print(f"bench: scenario {name} ...", flush=True)
            try:
                scenarios.SCENARIOS[name](ctx)
            except Exception as exc:  # noqa: BLE001 - recorded, the other scenarios still run
                if services.INTERRUPTED.is_set():  # a library turned Ctrl-C into an error: stop anyway
                    raise KeyboardInterrupt from exc
                traceback.print_exc()
                report.crashed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"bench: scenario {name} took {time.monotonic() - t0:.1f} s", flush=True)
            if services.INTERRUPTED.is_set():
                raise KeyboardInterrupt
        machine = measure.machine_description(services._pg_bin(), tools_bin)
    finally:
        # The bench process's own wake-up listener would complain about Redis going away.
        logging.getLogger("commands.fanout").setLevel(logging.CRITICAL)
        services.stop_all()

    if args.quick:  # small sizes measure nothing: the quick run only proves the bench still works
        for row in report.rows:
            row.met = None
    elapsed = time.monotonic() - started
    load_after = measure.loadavg()
    print()
    print(report.text_table())
    print()
    for note in report.notes:
        print(f"- {note}")
    for row in report.targets():
        print(f"target {row.metric}: {row.value_text} -> {row.verdict}")
    for name, error in report.crashed.items():
        print(f"CRASHED {name}: {error}")
    print(f"bench ({mode}) finished in {elapsed:.0f} s; load average before {load_before}, after {load_after}")

    if hub_env or overrides:
        print(f"bench: non-default run (hub env {hub_env}, sizes {overrides}): not written to RESULTS.md")
    elif not args.quick and not args.no_results:
        partial = set(chosen) != set(scenarios.SCENARIOS)
        what = f"full-size run of {', '.join(chosen)} only" if partial else "full run"
        heading = f"{when:%Y-%m-%d %H:%M %Z} — {what} ({elapsed:.0f} s)"
        extra = [f"**Load average:** before {load_before}, after {load_after} (the machine is shared; "
                 "< 1.0 counts as quiet).",
                 f"**Hub:** one uvicorn process ({server_stack()}), DATABASE_URL PostgreSQL ({stack.db_mode()}), "
                 f"REDIS_URL set, relay/operator throttles raised; project code at {git_head()}."]
        append_results(report, heading, machine, extra)
        print(f"appended to {RESULTS}")
    return 1 if report.crashed else 0


if __name__ == "__main__":
    sys.exit(main())
