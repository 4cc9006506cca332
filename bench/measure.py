"""Percentiles, per-process CPU and memory from /proc, and the machine description."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(q / 100 * len(ordered) + 0.5))))
    return ordered[rank - 1]


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User + system CPU of one process; with `reaped`, plus that of its children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = int(fields[11]) + int(fields[12])
    if reaped:
        total += int(fields[13]) + int(fields[14])
    return total / TICK


def tree_pids(pid: int) -> list[int]:
    """The process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """The process, its live descendants, and the children they have reaped (short-lived workers)."""
    total = 0.0
    for child in tree_pids(pid):
        try:
            total += cpu_seconds(child, reaped=True)
        except OSError:
            pass
    return total


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB$", status, re.M).group(1)) / 1024


def pss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    match = re.search(r"^Pss:\s+(\d+) kB$", text, re.M)
    return int(match.group(1)) / 1024 if match else None


@dataclass
class CpuWindow:
    """CPU used by some processes over a wall-clock window, as % of one core."""

    pids: list[int]
    tree: bool = False

    def __enter__(self) -> CpuWindow:
        self.start_cpu = self._cpu()
        self.start = time.monotonic()
        return self

    def _cpu(self) -> float:
        read = tree_cpu_seconds if self.tree else cpu_seconds
        total = 0.0
        for pid in self.pids:
            try:
                total += read(pid)
            except OSError:
                pass
        return total

    def __exit__(self, *exc: object) -> None:
        self.seconds = self._cpu() - self.start_cpu
        self.wall = time.monotonic() - self.start
        self.percent = 100 * self.seconds / self.wall if self.wall else 0.0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def total_cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def machine_description(pg_bin: Path | None, tools_bin: Path | None) -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    from bench.tools import ansible as ansible_path

    found = ansible_path(tools_bin)
    ansible = f"{_version([found, '--version'])} ({found})" if found else "?"
    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical cores",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.platform(),
        "python": platform.python_version(),
        "postgresql": _version([str(pg_bin / "postgres"), "--version"]) if pg_bin else "?",
        "redis": _version(["redis-server", "--version"]),
        "openssh": _version(["ssh", "-V"]),
        "ansible": ansible,
        "uvicorn": _version([str(Path(sys.executable).parent / "uvicorn"), "--version"]),
    }
