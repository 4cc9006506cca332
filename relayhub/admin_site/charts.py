"""Geometry of the dashboard's bar chart, drawn as server-rendered SVG (no JavaScript, nothing from a CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float
    height: float
    failed_y: float
    failed_height: float
    label: str
    title: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    peak: int


def bar_chart(buckets: Sequence[tuple[str, int, int]], width: int = 480, height: int = 120) -> BarChart:
    """Bars of (label, total, failed); the failed part is stacked at the bottom of each bar."""
    peak = max((total for _, total, _ in buckets), default=0)
    scale = (height - 14) / peak if peak else 0
    slot = width / max(len(buckets), 1)
    bars = []
    for index, (label, total, failed) in enumerate(buckets):
        bar_height, failed_height = total * scale, failed * scale
        bars.append(Bar(
            x=round(index * slot + 1, 1), width=round(max(slot - 2, 1), 1),
            y=round(height - bar_height, 1), height=round(bar_height, 1),
            failed_y=round(height - failed_height, 1), failed_height=round(failed_height, 1),
            label=label, title=f"{label}: {total} command{'s' if total != 1 else ''}, {failed} failed",
        ))
    return BarChart(width, height, bars, peak)
