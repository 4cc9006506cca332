"""The results table (terminal and Markdown) and bench/RESULTS.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass
class Row:
    scenario: str
    metric: str
    value: float | None
    unit: str
    baseline_label: str = ""
    baseline: float | None = None
    # "ratio": value / baseline; "speedup": baseline / value (shown as "N× faster")
    ratio_kind: str = "ratio"
    target: str = ""
    met: bool | None = None
    note: str = ""

    def fmt(self, number: float | None) -> str:
        if number is None:
            return "-"
        if abs(number) >= 100:
            return f"{number:,.0f}"
        if abs(number) >= 10:
            return f"{number:.1f}"
        return f"{number:.2f}" if abs(number) >= 0.1 or number == 0 else f"{number:.3f}"

    @property
    def value_text(self) -> str:
        return f"{self.fmt(self.value)} {self.unit}".strip() if self.value is not None else (self.note or "-")

    @property
    def baseline_text(self) -> str:
        if not self.baseline_label:
            return "-"
        return f"{self.baseline_label}: {self.fmt(self.baseline)}" if self.baseline is not None else self.baseline_label

    @property
    def ratio_text(self) -> str:
        if self.ratio_kind == "none" or self.value is None or self.baseline is None or self.baseline == 0 or self.value == 0:
            return "-"
        if self.ratio_kind == "speedup":
            return f"{self.baseline / self.value:.1f}× faster"
        return f"×{self.value / self.baseline:.2f}"

    @property
    def verdict(self) -> str:
        if not self.target:
            return ""
        return f"{self.target} {'MET' if self.met else 'MISSED' if self.met is False else '(not judged)'}"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    crashed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    def _cells(self) -> list[list[str]]:
        return [[r.scenario, r.metric, r.value_text, r.baseline_text, r.ratio_text, r.verdict] for r in self.rows]

    HEADER = ["scenario", "metric", "relayhub", "baseline (same run)", "ratio", "target"]

    def text_table(self) -> str:
        cells = [self.HEADER, *self._cells()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.HEADER))]
        lines = []
        for index, row in enumerate(cells):
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
            if index == 0:
                lines.append("  ".join("-" * width for width in widths))
        return "\n".join(lines)

    def markdown_table(self) -> str:
        lines = ["| " + " | ".join(self.HEADER) + " |", "|" + "---|" * len(self.HEADER)]
        for row in self._cells():
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        return "\n".join(lines)

    def targets(self) -> list[Row]:
        return [r for r in self.rows if r.target]


def append_results(report: Report, heading: str, machine: dict[str, str], extra: list[str]) -> None:
    if not RESULTS.exists():
        RESULTS.write_text(
            "# relayhub benchmark results\n\n"
            "Written by `make bench` (bench/run.py); each full run appends a dated section, so older\n"
            "sections show the trend. Every figure sits beside its baseline measured in the same run.\n"
            "`ratio` is relayhub ÷ baseline unless it says \"faster\" (baseline ÷ relayhub).\n"
        )
    parts = [f"\n## {heading}\n\n", "- **Machine:** " + "; ".join(f"{k}: {v}" for k, v in machine.items()) + "\n"]
    parts += [f"- {line}\n" for line in extra]
    parts.append("\n" + report.markdown_table() + "\n")
    met = [r for r in report.targets() if r.met]
    missed = [r for r in report.targets() if r.met is False]
    parts.append(f"\n**Targets met ({len(met)}):** " + ("; ".join(f"{r.metric} {r.value_text} ({r.target})"
                                                              for r in met) or "none") + "\n")
    parts.append(f"\n**Targets missed ({len(missed)}):** " + ("; ".join(f"{r.metric} {r.value_text} ({r.target})"
                                                                    for r in missed) or "none") + "\n")
    if report.crashed:
        parts.append("\n**Crashed scenarios:** " + "; ".join(f"{k}: {v}" for k, v in report.crashed.items()) + "\n")
    if report.notes:
        parts.append("\n" + "\n".join(f"- {note}" for note in report.notes) + "\n")
    with RESULTS.open("a") as handle:
        handle.write("".join(parts))
