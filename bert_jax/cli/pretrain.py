"""`bert-jax pretrain --config=configs/pretrain.py:base --workdir=DIR [--config.X=V ...]`

The same command on one CPU, local GPUs, a TPU VM or a pod slice (run on every host): only the
mesh and batch size overrides change. Several processes join through jax.distributed (see
`bert_jax/distributed.py`): on TPU VMs and SLURM/MPI that is automatic; elsewhere pass
--coordinator_address, --num_processes and --process_id (or the JAX_* variables).
"""

from __future__ import annotations

import sys

from absl import flags

from bert_jax.cli import config_args

PROG = "bert-jax pretrain"


def _define(values: flags.FlagValues) -> None:
    flags.DEFINE_string(
        "workdir", None, "where checkpoints and TensorBoard logs go (local or gs://)",
        flag_values=values,
    )  # fmt: skip
    flags.DEFINE_string(
        "coordinator_address", None, "host:port of process 0 (multi-process GPU/CPU runs)",
        flag_values=values,
    )  # fmt: skip
    flags.DEFINE_integer("num_processes", None, "processes in the run", flag_values=values)
    flags.DEFINE_integer("process_id", None, "this process's index", flag_values=values)


def main(argv: list[str]) -> int:
    from bert_jax.errors import UserError

    values = config_args.parse(argv, _define, PROG)
    if not values.workdir:
        raise UserError("--workdir is required (checkpoints and TensorBoard logs go there)")

    from bert_jax import distributed

    # Before anything touches a device.
    distributed.initialize(values.coordinator_address, values.num_processes, values.process_id)

    from bert_jax.trainer import loop as train

    try:
        train.train_and_evaluate(values.config, values.workdir)
    except train.Diverged as e:
        print(f"{PROG}: training diverged: {e}", file=sys.stderr)
        return 1
    return 0
