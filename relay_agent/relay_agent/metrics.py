"""Host metrics in the hub's shape."""

from __future__ import annotations

import os

import psutil

_MB = 1024 * 1024
_GB = 1024 * 1024 * 1024


class MetricsCollector:
    def __init__(self, disk_path: str = "/") -> None:
        self.disk_path = disk_path
        # cpu_percent(None) measures since the previous call; the first call only sets the baseline.
        psutil.cpu_percent(interval=None)

    def collect(self) -> dict[str, float]:
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(self.disk_path)
        load1, load5, load15 = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
        return {
            "cpuPercent": round(psutil.cpu_percent(interval=None), 1),
            "memoryPercent": round(memory.percent, 1),
            "memoryUsedMb": round((memory.total - memory.available) / _MB, 1),
            "memoryTotalMb": round(memory.total / _MB, 1),
            "diskPercent": round(disk.percent, 1),
            "diskUsedGb": round(disk.used / _GB, 2),
            "diskTotalGb": round(disk.total / _GB, 2),
            "loadAvg1m": round(load1, 2),
            "loadAvg5m": round(load5, 2),
            "loadAvg15m": round(load15, 2),
        }
