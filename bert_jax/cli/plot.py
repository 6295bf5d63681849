"""`bert-jax plot WORKDIR [WORKDIR ...] [--output=DIR]`: PNG training curves from the runs'
TensorBoard logs (WORKDIR/tensorboard), one file per group of scalars: loss.png (train and eval),
accuracy.png (MLM/NSP accuracy or the task's metrics), learning_rate.png, grad_norm.png,
throughput.png (sequences/s) and mfu.png (MFU, or GFLOP/s per device where the chip's peak is
unknown). Groups a run did not log are skipped. Several workdirs overlay on the same figures.

Reads the event files without TensorFlow and needs no JAX or device; WORKDIR and --output may
be local or gs:// paths, and a run still training can be plotted.
"""

from __future__ import annotations

import argparse
import os

from bert_jax.cli.parser import command_parser
from bert_jax.errors import UserError

PLOTS_SUBDIR = "plots"

DESCRIPTION = """\
PNG training curves from the TensorBoard logs of one or more runs (pretrain or finetune
workdirs), steps on the x axis, one file per group of scalars: loss.png (train and eval),
accuracy.png (MLM/NSP accuracy or the task's metrics), learning_rate.png, grad_norm.png,
throughput.png (sequences/s) and mfu.png (MFU, or GFLOP/s per device where the chip's peak is
unknown). Groups a run did not log are skipped; several workdirs overlay on the same figures,
for comparison. Needs no JAX or device; a run still training can be plotted, and WORKDIR and
--output may be local or gs:// paths."""

EXAMPLES = [
    "bert-jax plot workdir/quickstart            # writes workdir/quickstart/plots/loss.png, ...",
    "bert-jax plot runs/base runs/large --output=plots/base_vs_large",
]


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("bert-jax plot", DESCRIPTION, EXAMPLES)
    parser.add_argument(
        "workdirs",
        nargs="+",
        metavar="WORKDIR",
        help="a pretrain or finetune workdir (or its tensorboard/ directory)",
    )
    parser.add_argument(
        "--output",
        metavar="DIR",
        help=f"directory for the PNGs (default with one WORKDIR: WORKDIR/{PLOTS_SUBDIR}; "
        "required with several)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    workdirs = list(dict.fromkeys(args.workdirs))  # the same run twice is one run
    output = args.output
    if output is None:
        if len(workdirs) > 1:
            raise UserError(
                f"{len(workdirs)} workdirs: pass --output=DIR for the comparison's PNGs"
            )
        output = os.path.join(workdirs[0].rstrip("/"), PLOTS_SUBDIR)

    from bert_jax.trainer import events, plot

    labels = plot.run_labels(workdirs)
    runs = [(label, events.read_scalars(w)) for label, w in zip(labels, workdirs, strict=True)]
    figures = plot.build_figures(runs)
    if not figures:
        raise UserError(
            f"nothing to plot in {', '.join(workdirs)}: no loss, accuracy, learning rate or "
            "throughput scalars logged yet"
        )
    for path in plot.write_figures(figures, output):
        print(path)
    return 0
