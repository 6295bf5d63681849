"""The table a command prints last, on stdout: what the run did, one row per quantity, and for
a metric the baseline beside it where one is known (what a model that learned nothing scores).

Plain text with aligned columns, so it reads the same in a terminal, a log file and a CI page,
and `grep` finds a row by its name. A cell that ends its row may run past its column's width
(a long path does not push the baseline column to the right of the screen).

    pretraining: summary
    =================================================================
                         value      baseline
    -----------------------------------------------------------------
    steps                6 of 6
    eval mlm_accuracy    0.1234     0.0567 (most frequent token)
    checkpoints          /tmp/run/checkpoints
    =================================================================
"""

from __future__ import annotations

import dataclasses
import math
import sys

Baseline = tuple[float, str]  # (value, a few words saying what it is)
GAP = "  "  # between columns


def format_value(value) -> str:
    """Integers with thousands separators; floats with 4 decimals (metrics and losses), very
    small ones in scientific notation, large ones with one; text as it is."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


def format_baseline(baseline: Baseline | None) -> str:
    if baseline is None:
        return ""
    value, description = baseline
    shown = format_value(float(value))
    return f"{shown} ({description})" if description else shown


def duration(seconds: float) -> str:
    """41.2 s, 12 min 03 s, 2 h 05 min 09 s."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    return f"{minutes} min {secs:02d} s"


def align(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell among the rows that have
    a cell after it (empty trailing cells dropped, so a row's last cell never sets a width)."""
    trimmed = []
    for row in rows:
        cells = list(row)
        while cells and not cells[-1]:
            cells.pop()
        trimmed.append(cells)
    columns = max((len(cells) for cells in trimmed), default=0)
    widths = [
        max((len(cells[i]) for cells in trimmed if len(cells) > i + 1), default=0)
        for i in range(columns)
    ]
    return [
        GAP.join([*(c.ljust(widths[i]) for i, c in enumerate(cells[:-1])), *cells[-1:]])
        for cells in trimmed
    ]


@dataclasses.dataclass
class SummaryTable:
    title: str
    rows: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

    def add(self, name: str, value, baseline: Baseline | None = None) -> SummaryTable:
        self.rows.append((name, format_value(value), format_baseline(baseline)))
        return self

    def render(self) -> str:
        with_baselines = any(baseline for _, _, baseline in self.rows)
        header = [("", "value", "baseline")] if with_baselines else []
        lines = align(header + self.rows)
        width = max(len(line) for line in [self.title, *lines])
        ruled = [*lines[:1], "-" * width, *lines[1:]] if with_baselines else lines
        return "\n".join([self.title, "=" * width, *ruled, "=" * width])

    def print(self, file=None) -> None:
        """The table after an empty line (stdout unless `file`)."""
        print("\n" + self.render(), file=file or sys.stdout, flush=True)
