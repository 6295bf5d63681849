"""`bert-jax pretrain --config=configs/pretrain.py:base --workdir=DIR [--config.X=V ...]`

The same command on one CPU, local GPUs, a TPU VM or a pod slice (run on every host): only the
mesh and batch size overrides change. Multi-process flags: `bert_jax/cli/training.py`.
"""

from __future__ import annotations

from bert_jax.cli import training

PROG = "bert-jax pretrain"


def _pretraining():
    from bert_jax.tasks import pretraining

    return pretraining.build


def main(argv: list[str]) -> int:
    _, summaries = training.train(argv, PROG, _pretraining)
    return 0 if summaries is not None else 1
