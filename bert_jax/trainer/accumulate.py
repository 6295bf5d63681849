"""Host-side metrics: add up the sums the steps return, turn them into means.

Train and eval steps return float32 scalar sums (`bert_jax.tasks.pretraining_loss.SUM_KEYS`) plus
step-level values (grad norm, learning rate). Sums add over steps and batches; means come out only
at the end, so an evaluation over many batches weighs every prediction equally.
"""

from __future__ import annotations

import math

import numpy as np

from bert_jax.tasks.pretraining_loss import SUM_KEYS


class Accumulator:
    """Running totals of per-step metric dicts: sums add, other values average over steps."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.totals: dict[str, float] = {}
        self.steps = 0

    def add(self, metrics: dict) -> None:
        for key, value in metrics.items():
            self.totals[key] = self.totals.get(key, 0.0) + float(np.asarray(value))
        self.steps += 1

    def summary(self, nsp: bool = True) -> dict[str, float]:
        """Means over everything added; empty when nothing was."""
        if not self.steps:
            return {}
        out = summarize(self.totals, nsp)
        for key, value in self.totals.items():
            # A step's own `loss` (of its batch) would replace the pooled one; keep the
            # pooled one, so the logged loss is mlm_loss + nsp_loss from the same sums.
            if key not in SUM_KEYS and key not in out:
                out[key] = value / self.steps
        return out


def summarize(sums: dict, nsp: bool = True) -> dict[str, float]:
    """MLM/NSP loss and accuracy from summed counts; `loss` = MLM mean + NSP mean."""
    weight = max(float(sums["mlm_weight"]), 1.0)
    out = {
        "mlm_loss": float(sums["mlm_loss_sum"]) / weight,
        "mlm_accuracy": float(sums["mlm_correct"]) / weight,
    }
    loss = out["mlm_loss"]
    if nsp:
        count = max(float(sums["nsp_count"]), 1.0)
        out["nsp_loss"] = float(sums["nsp_loss_sum"]) / count
        out["nsp_accuracy"] = float(sums["nsp_correct"]) / count
        loss += out["nsp_loss"]
    out["loss"] = loss
    return out


def non_finite(metrics: dict) -> list[str]:
    """Names of metrics that are NaN or infinite."""
    return [k for k, v in metrics.items() if not math.isfinite(float(np.asarray(v)))]
