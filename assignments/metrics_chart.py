"""Geometry of the relay page's metrics chart, drawn as server-rendered SVG (no JavaScript, nothing from a CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Series:
    name: str
    css: str
    points: str
    last: float | None
    last_xy: tuple[float, float] | None


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    series: list[Series]
    start: datetime | None
    end: datetime | None
    samples: int

    @property
    def gridlines(self) -> list[float]:
        return [0, self.height / 4, self.height / 2, self.height * 3 / 4, self.height]


def percent_chart(samples: Sequence[tuple[datetime, dict]], keys: Sequence[tuple[str, str, str]],
                  width: int = 600, height: int = 150) -> LineChart:
    """Polylines of 0–100 % metrics over time; ``keys`` are (metrics key, name, css class)."""
    if not samples:
        return LineChart(width, height, [], None, None, 0)
    start, end = samples[0][0], samples[-1][0]
    span = (end - start).total_seconds()
    series = []
    for key, name, css in keys:
        points, last, last_xy = [], None, None
        for at, metrics in samples:
            value = metrics.get(key) if isinstance(metrics, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                last = max(0.0, min(100.0, float(value)))
                last_xy = (round((at - start).total_seconds() / span * width, 1) if span else width,
                           round(height - last / 100 * height, 1))
                points.append(f"{last_xy[0]},{last_xy[1]}")
        series.append(Series(name, css, " ".join(points), last, last_xy))
    return LineChart(width, height, series, start, end, len(samples))


def thin(rows: list, limit: int) -> list:
    """Every n-th row so that at most ``limit`` remain, keeping the newest."""
    if len(rows) <= limit:
        return rows
    step = -(-len(rows) // limit)
    return rows[::-1][::step][::-1]
