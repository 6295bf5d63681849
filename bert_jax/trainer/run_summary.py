"""The table the trainer prints when a run ends: how far it got and how fast, the last train
loss and evaluation metrics (each beside the task's baseline where the task has `baselines()`:
eval metric name -> (value, what it is)), the best checkpoint of a run that keeps one, and
where the checkpoints are.

    glue/mrpc: summary
    ======================================================================
                           value                   baseline
    ----------------------------------------------------------------------
    steps                  345 of 345
    epochs                 3.00
    wall time              4 min 12 s
    time per step          0.512 s
    throughput             62.5 seq/s, 8,000 tokens/s, MFU 41.2%
    final train loss       0.2134
    eval accuracy          0.8456                  0.6838 (majority class)
    best checkpoint        step 230 (f1 0.8876)
    checkpoints            /runs/mrpc/checkpoints
    ======================================================================
"""

from __future__ import annotations

import sys

from bert_jax.checkpoint import metadata as layout
from bert_jax.report_table import Baseline, SummaryTable, duration


def task_baselines(task) -> dict[str, Baseline]:
    """The task's `baselines()`, {} when it has none. A summary never fails a finished run:
    a `baselines()` that raises leaves the column empty, with one line on stderr."""
    method = getattr(task, "baselines", None)
    if method is None:
        return {}
    try:
        return dict(method() or {})
    except Exception as e:  # noqa: BLE001 -- the run is done; its summary must still print
        print(f"note: no baselines in the summary ({type(e).__name__}: {e})", file=sys.stderr)
        return {}


def baseline_of(
    metric: str, baselines: dict[str, Baseline], split: str | None = None
) -> Baseline | None:
    """The baseline of `metric` (itself `split/metric` where a task has several splits, as
    the loop names them; `split` names the split of a bare metric name)."""
    names = [f"{split}/{metric}"] if split else []
    names += [metric, metric.rsplit("/", 1)[-1]]
    return next((baselines[name] for name in names if name in baselines), None)


def add_metrics(
    table: SummaryTable,
    prefix: str,
    metrics: dict[str, float],
    baselines: dict[str, Baseline],
    split: str | None = None,
) -> None:
    """A row per metric, `prefix` before its name, its baseline beside it where known."""
    for name, value in metrics.items():
        table.add(f"{prefix}{name}", float(value), baseline_of(name, baselines, split))


def best_checkpoint(ckpt) -> str | None:
    """`step N (metric V)` of the best kept checkpoint of a run that keeps one."""
    if ckpt is None or ckpt.best is None:
        return None
    step = ckpt.best_step()
    if step is None:
        return None
    value = (layout.read_metrics(ckpt.directory / str(step)) or {}).get(ckpt.best.metric)
    return f"step {step:,} ({ckpt.best.metric} {value:.4f})"


def _rate(value: float) -> str:
    """3 significant digits for small rates (a tiny model on a CPU), one decimal for the rest."""
    return f"{value:.3g}" if value < 10 else f"{value:,.1f}"


def _throughput(rates: dict[str, float]) -> str:
    shown = [
        f"{_rate(rates['sequences_per_second'])} seq/s",
        f"{rates['tokens_per_second']:,.0f} tokens/s",
    ]
    if "mfu" in rates:
        shown.append(f"MFU {100 * rates['mfu']:.1f}%")
    elif "gflops_per_device" in rates:
        shown.append(f"{_rate(rates['gflops_per_device'])} GFLOP/s per device")
    return ", ".join(shown)


def training_table(task, plan, summaries, seconds: float, ckpt) -> SummaryTable:
    """The end-of-run table of `train_and_evaluate` (`summaries`: its `Summaries`)."""
    table = SummaryTable(f"{task.name}: summary")
    steps = f"{summaries.last_step:,} of {plan.num_steps:,}"
    if summaries.first_step:
        steps += f" (this run: {summaries.first_step:,} -> {summaries.last_step:,})"
    if not summaries.finished:
        steps += "; stopped by a preemption notice: run the same command to resume"
    table.add("steps", steps)
    if plan.steps_per_epoch:
        table.add("epochs", f"{summaries.last_step / plan.steps_per_epoch:.2f}")
    table.add("wall time", duration(seconds))
    rates = summaries.rates or {}
    if rates:
        table.add("time per step", f"{rates['seconds_per_step']:.3g} s")
        table.add("throughput", _throughput(rates))
    if "train/loss" in summaries:
        table.add("final train loss", float(summaries["train/loss"]))
    evaluated = {k.removeprefix("eval/"): v for k, v in summaries.items() if k.startswith("eval/")}
    add_metrics(table, "eval ", evaluated, task_baselines(task) if evaluated else {})
    best = best_checkpoint(ckpt)
    if best:
        table.add("best checkpoint", best)
    table.add("checkpoints", str(ckpt.directory) if ckpt is not None else "none (no workdir)")
    return table
