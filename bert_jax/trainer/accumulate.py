"""Host-side totals of the values the steps return.

A training step returns its task's float32 scalar sums (loss sums, correct counts, weights) and
three step-level values (`STEP_VALUES`: the batch's loss, the gradient norm, the learning rate).
Sums add over steps; the task turns them into means only at the end (`Task.train_summary`), so
every example weighs the same however the steps were batched. Step-level values are averaged.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

STEP_VALUES = ("loss", "grad_norm", "learning_rate")


class Accumulator:
    """Running totals of per-step metric dicts."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.totals: dict[str, float] = {}
        self.steps = 0

    def add(self, metrics: dict) -> None:
        for key, value in metrics.items():
            self.totals[key] = self.totals.get(key, 0.0) + float(np.asarray(value))
        self.steps += 1

    def summary(self, summarize: Callable[[dict], dict]) -> dict[str, float]:
        """`summarize(sums)` plus the step-level means it does not replace; {} when empty.
        The pooled loss from the sums wins over the mean of the steps' own losses."""
        if not self.steps:
            return {}
        sums = {k: v for k, v in self.totals.items() if k not in STEP_VALUES}
        out = summarize(sums)
        for key in STEP_VALUES:
            if key in self.totals and key not in out:
                out[key] = self.totals[key] / self.steps
        return out


def non_finite(metrics: dict) -> list[str]:
    """Names of metrics that are NaN or infinite."""
    return [k for k, v in metrics.items() if not math.isfinite(float(np.asarray(v)))]
