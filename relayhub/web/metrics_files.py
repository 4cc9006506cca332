"""The files of prometheus-client's multiprocess mode, named ``<kind>_<pid>.db``: whose process still runs.

Imports nothing of prometheus-client, so that a launcher may tidy the directory before any metric exists.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_PID = re.compile(r"_(\d+)\.db$")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True


def pid_of(path: Path) -> int | None:
    match = _PID.search(path.name)
    return int(match.group(1)) if match else None


def dead_pids(directory: str | os.PathLike, pattern: str = "*.db") -> set[int]:
    pids = {pid_of(path) for path in Path(directory).glob(pattern)}
    return {pid for pid in pids if pid is not None and not process_alive(pid)}


def remove_dead(directory: str | os.PathLike) -> int:
    """Remove the files of every process that no longer runs: what a previous run of the server counted."""
    removed = 0
    for path in Path(directory).glob("*.db"):
        pid = pid_of(path)
        if pid is not None and not process_alive(pid):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
