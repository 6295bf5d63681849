"""Training curves as PNG files: one figure per group of scalars (losses, accuracy and task
metrics, learning rate, gradient norm, throughput, MFU), one panel per metric, steps on x.

Train and every evaluation split of a metric share its panel; several runs overlay on the same
panels for comparison. With one run each split has its own colour; with several each run has
its colour and each split its line style. Figures are `matplotlib.figure.Figure` objects drawn
on the Agg canvas (no pyplot, no GUI, no global figure registry), then written through
`bert_jax.paths` so the output may be a gs:// directory.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from typing import NamedTuple

from matplotlib import ticker
from matplotlib.figure import Figure

from bert_jax import paths
from bert_jax.trainer import events


class Group(NamedTuple):
    name: str  # the PNG's file name without .png
    title: str


GROUPS = (
    Group("loss", "Loss"),
    Group("accuracy", "Accuracy and task metrics"),
    Group("learning_rate", "Learning rate"),
    Group("grad_norm", "Gradient norm"),
    Group("throughput", "Throughput"),
    Group("mfu", "Compute efficiency"),
)

# Evaluation metrics of the tasks (`bert_jax/tasks/metrics.py`, SQuAD, CoNLL) that go beside
# the accuracies; other evaluation keys (SQuAD 2.0 thresholds and counts) are not curves.
TASK_METRICS = (
    "f1",
    "exact_match",
    "exact",
    "matthews",
    "pearson",
    "spearman",
    "precision",
    "recall",
)

# metric -> (panel title, y label); a metric missing here is titled by its own name.
LABELS = {
    "loss": ("loss (total)", "loss"),
    "mlm_loss": ("MLM loss", "loss"),
    "nsp_loss": ("NSP loss", "loss"),
    "mlm_accuracy": ("MLM accuracy (masked tokens)", "accuracy"),
    "nsp_accuracy": ("NSP accuracy", "accuracy"),
    "span_accuracy": ("span accuracy (start and end)", "accuracy"),
    "f1": ("F1", "F1"),
    "exact_match": ("exact match", "exact match"),
    "exact": ("exact match", "exact match"),
    "matthews": ("Matthews correlation", "MCC"),
    "pearson": ("Pearson correlation", "Pearson r"),
    "spearman": ("Spearman correlation", "Spearman rho"),
    "learning_rate": ("learning rate", "learning rate"),
    "grad_norm": ("global gradient norm", "L2 norm"),
    "sequences_per_second": ("training throughput", "sequences / s"),
    "mfu": ("model FLOP utilisation (of the chip's peak)", "MFU"),
    "gflops_per_device": ("model GFLOP/s per device (no known peak: no MFU)", "GFLOP/s"),
}
# Panel order inside a group: these first, in this order, then the rest by name.
ORDER = tuple(LABELS)

LINE_STYLES = ("-", "--", ":", "-.")
MARKERS_UP_TO = 25  # a series with this few points shows its points, not only a line


def group_of(metric: str) -> str | None:
    """The group (`Group.name`) a metric's panel belongs to; None for metrics not drawn."""
    if metric == "loss" or metric.endswith("_loss"):
        return "loss"
    if metric.endswith("accuracy") or metric in TASK_METRICS:
        return "accuracy"
    if metric in ("learning_rate", "grad_norm"):
        return metric
    if metric == "sequences_per_second":
        return "throughput"
    if metric in ("mfu", "gflops_per_device"):
        return "mfu"
    return None


def split_tag(tag: str) -> tuple[str, str]:
    """("train", "loss") for "train/loss"; ("eval matched", "accuracy") for a split's
    "eval/matched/accuracy"."""
    *phase, metric = tag.split("/")
    return " ".join(phase), metric


def run_labels(workdirs: Sequence[paths.PathLike]) -> list[str]:
    """Legend names of the runs: each workdir's last path components, as few as tell them apart
    (runs/a/out and runs/b/out are "a/out" and "b/out")."""
    parts = []
    for workdir in workdirs:
        names = [p for p in os.fspath(paths.path(workdir)).rstrip("/").split("/") if p]
        if len(names) > 1 and names[-1] == events.LOG_SUBDIR:  # given the log directory itself
            names = names[:-1]
        parts.append(names)
    depth = 1
    while True:
        labels = ["/".join(names[-depth:]) for names in parts]
        if len(set(labels)) == len(labels) or depth >= max(len(names) for names in parts):
            return labels
        depth += 1


class _Line(NamedTuple):
    run: int
    phase: str
    series: events.Series


def build_figures(runs: Sequence[tuple[str, dict[str, events.Series]]]) -> dict[str, Figure]:
    """Group name -> its figure, for the groups any run has data for. `runs` is
    [(legend name, `events.read_scalars` of the run)]."""
    panels: dict[str, dict[str, list[_Line]]] = {}  # group -> metric -> lines
    phases: set[str] = set()
    for run, (_, scalars) in enumerate(runs):
        for tag, series in scalars.items():
            phase, metric = split_tag(tag)
            group = group_of(metric)
            if group is None or not series.steps:
                continue
            panels.setdefault(group, {}).setdefault(metric, []).append(_Line(run, phase, series))
            phases.add(phase)
    # Train first, then the evaluation splits: the same style for a split in every figure.
    phase_order = sorted(phases, key=lambda p: (p != "train", p))
    names = [name for name, _ in runs]
    return {
        group.name: _figure(group, panels[group.name], names, phase_order)
        for group in GROUPS
        if group.name in panels
    }


def _figure(
    group: Group, metrics: dict[str, list[_Line]], runs: list[str], phases: list[str]
) -> Figure:
    ordered = sorted(metrics, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))
    columns = min(len(ordered), 3)
    rows = math.ceil(len(ordered) / columns)
    figure = Figure(figsize=(5.0 * columns, 3.6 * rows + 0.8), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for unused in axes[len(ordered) :]:
        figure.delaxes(unused)
    several = len(runs) > 1
    handles = {}
    for ax, metric in zip(axes, ordered, strict=False):
        for line in sorted(metrics[metric], key=lambda ln: (ln.run, phases.index(ln.phase))):
            style = phases.index(line.phase)
            label = " ".join(filter(None, (runs[line.run], line.phase))) if several else line.phase
            (drawn,) = ax.plot(
                line.series.steps,
                line.series.values,
                color=f"C{(line.run if several else style) % 10}",
                linestyle=LINE_STYLES[style % len(LINE_STYLES)],
                marker="o" if len(line.series.steps) <= MARKERS_UP_TO else None,
                markersize=3.5,
                linewidth=1.5,
                label=label or runs[line.run],
            )
            handles.setdefault(drawn.get_label(), drawn)
        _decorate(ax, metric, titled=len(ordered) > 1)
    figure.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=min(len(handles), 4),
        frameon=False,
    )
    compared = " vs ".join(runs) if len(runs) <= 3 else f"{len(runs)} runs"
    # A single panel's own title says more than the group's (which throughput measure).
    title = group.title if len(ordered) > 1 else _labels(ordered[0])[0]
    title = title[:1].upper() + title[1:]
    # A narrow (one or two panel) figure cannot hold a long title on one line.
    fits = len(title) + len(compared) <= 48 * columns
    figure.suptitle(f"{title}: {compared}" if fits else f"{title}\n{compared}")
    return figure


def _labels(metric: str) -> tuple[str, str]:
    """(panel title, y label) of a metric."""
    return LABELS.get(metric, (metric.replace("_", " "), metric.replace("_", " ")))


def _decorate(ax, metric: str, titled: bool) -> None:
    title, ylabel = _labels(metric)
    if titled:
        ax.set_title(title, fontsize="medium")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=6, integer=True))
    ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))  # 2k, 1.5M: short step labels
    if metric == "mfu":
        ax.yaxis.set_major_formatter(ticker.PercentFormatter(xmax=1.0))
    elif metric == "learning_rate":
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))


def write_figures(figures: dict[str, Figure], output: paths.PathLike) -> list[str]:
    """Save each figure as OUTPUT/NAME.png (local or gs://); the paths written, in order."""
    directory = paths.path(output)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in figures.items():
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=110)
        target = directory / f"{name}.png"
        paths.write_atomic(target, png.getvalue())
        written.append(os.fspath(target))
    return written
