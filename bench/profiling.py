"""py-spy sampling of running hub/agent processes, summarised as self and inclusive time per function.

The raw collapsed stacks go to bench/profiles/ (flame-graph input: `flamegraph.pl`, speedscope);
the summary goes there too and is printed.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench.services import ROOT

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", "lib/python3.11/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({path})"


def summarise(raw: Path, top: int = 15) -> str:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        frames = [_short(f) for f in stack.split(";") if f]
        # py-spy puts the thread as the first frame ("thread (0x...)" or "process ..."); skip non-code frames.
        frames = [f for f in frames if "(" in f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += samples
        self_time[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return f"{raw.name}: no samples"
    out = [f"{raw.stem}: {total} samples"]
    out.append("  self time:")
    out += [f"    {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    out.append("  inclusive (project code and Django/DB/HTTP entry points):")
    keep = ("assignments/", "commands/", "relayhub/", "configpush/", "credentials/", "relay_agent/",
            "django/db/backends/", "psycopg/", "django/core/handlers/", "asgiref/", "uvicorn/", "requests/",
            "subprocess.py", "rest_framework/views.py", "redis/")
    chosen = [(name, n) for name, n in inclusive.most_common() if any(k in name for k in keep)]
    out += [f"    {100 * n / total:5.1f}%  {name}" for name, n in chosen[:top]]
    return "\n".join(out)


def start(pids: dict[str, int], seconds: float, ctx, idle: bool = False,  # noqa: ANN001
          gil: tuple[str, ...] = ()) -> list[tuple[str, Path, subprocess.Popen]]:
    """Start sampling several processes for `seconds` (py-spy runs beside them); see `finish`.

    Processes named in `gil` are sampled only while holding the GIL: their Python CPU, which is
    what bounds a single hub process.
    """
    if ctx.tools_bin is None or not (ctx.tools_bin / "py-spy").exists():
        ctx.report.notes.append("profiling skipped: py-spy not installed")
        return []
    ctx.profile_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    running = []
    for name, pid in pids.items():
        raw = ctx.profile_dir / f"{stamp}-{name}.txt"
        argv = [str(ctx.tools_bin / "py-spy"), "record", "--pid", str(pid), "--duration", str(int(seconds)),
                "--rate", "200", "--nonblocking", "--format", "raw", "--output", str(raw)]
        if idle:
            argv.append("--idle")
        if name in gil:
            argv.append("--gil")
        running.append((name, raw, subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                                    text=True)))
    return running


def finish(running: list[tuple[str, Path, subprocess.Popen]], ctx, timeout: float = 90) -> list[str]:  # noqa: ANN001
    """Wait for the samplers; print and return the summaries (also written beside the raw stacks)."""
    summaries = []
    for name, raw, proc in running:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if raw.exists():
            summary = summarise(raw)
            raw.with_suffix(".summary.txt").write_text(summary + "\n")
            summaries.append(summary)
            print(summary, flush=True)
        else:
            ctx.report.notes.append(f"profiling {name} failed: {err.strip()[-300:]}")
    return summaries


def record_many(pids: dict[str, int], seconds: float, ctx, idle: bool = False,  # noqa: ANN001
                gil: tuple[str, ...] = ()) -> list[str]:
    """Sample several processes at once for `seconds`; returns and prints their summaries."""
    return finish(start(pids, seconds, ctx, idle, gil), ctx, timeout=seconds + 60)
