"""What `bert-jax pretrain` and `bert-jax finetune` share: the flags of a training run, joining
the processes of a multi-host run, and running the trainer on a task.

Several processes join through jax.distributed (see `bert_jax/distributed.py`): on TPU VMs and
SLURM/MPI that is automatic; elsewhere pass --coordinator_address, --num_processes and
--process_id (or the JAX_* variables).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from absl import flags

from bert_jax.cli import config_args


def define_run_flags(values: flags.FlagValues) -> None:
    """--workdir and the multi-process flags."""
    flags.DEFINE_string(
        "workdir", None, "where checkpoints, TensorBoard logs and results go (local or gs://)",
        flag_values=values,
    )  # fmt: skip
    flags.DEFINE_string(
        "coordinator_address", None, "host:port of process 0 (multi-process GPU/CPU runs)",
        flag_values=values,
    )  # fmt: skip
    flags.DEFINE_integer("num_processes", None, "processes in the run", flag_values=values)
    flags.DEFINE_integer("process_id", None, "this process's index", flag_values=values)


def train(argv: list[str], prog: str, task_builder: Callable[[], Callable]):
    """(parsed flags, summaries) of a run of `task_builder()`'s task (imported only after the
    processes joined); summaries is None when training diverged (reported on stderr)."""
    from bert_jax.errors import UserError

    values = config_args.parse(argv, define_run_flags, prog)
    if not values.workdir:
        raise UserError("--workdir is required (checkpoints and TensorBoard logs go there)")

    from bert_jax import distributed

    # Before anything touches a device.
    distributed.initialize(values.coordinator_address, values.num_processes, values.process_id)

    from bert_jax.trainer import loop

    try:
        return values, loop.train_and_evaluate(values.config, values.workdir, task_builder())
    except loop.Diverged as e:
        print(f"{prog}: training diverged: {e}", file=sys.stderr)
        return values, None
