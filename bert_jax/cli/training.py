"""What `bert-jax pretrain` and `bert-jax finetune` share: their command line (a config, a
workdir, the multi-process options), their help (the config fields and what each means), joining
the processes of a multi-host run, and running the trainer on a task.

Several processes join through jax.distributed (see `bert_jax/distributed.py`): on TPU VMs and
SLURM/MPI that is automatic; elsewhere pass --coordinator_address, --num_processes and
--process_id (or the JAX_* variables).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from bert_jax.cli import config_args, config_help
from bert_jax.cli.parser import CommandParser, command_parser
from bert_jax.errors import UserError

CONFIG_HELP = (
    "config file and its argument, e.g. configs/pretrain.py:base; then --config.FIELD=VALUE "
    "sets one field (the config fields are listed below)"
)


def run_parser(prog: str, description: str, examples: Sequence[str]) -> CommandParser:
    """The parser of a training command (its help lists the config fields: `parse`)."""
    p = command_parser(prog, description, examples, add_help=False)
    p.usage = "%(prog)s --config=FILE.py[:ARG] --workdir=DIR [--config.FIELD=VALUE ...] [options]"
    p.add_argument(
        "-h", "--help", action="store_true",
        help="show this help and exit; after --config=FILE.py:ARG it shows that config's values",
    )  # fmt: skip
    p.add_argument("--config", metavar="FILE.py[:ARG]", help=CONFIG_HELP)
    p.add_argument(
        "--workdir", metavar="DIR",
        help="where checkpoints, TensorBoard logs and results go (local or gs://); the same "
        "command with the same workdir resumes an interrupted run",
    )  # fmt: skip
    group = p.add_argument_group(
        "multi-process runs (automatic on TPU VMs and under SLURM or MPI; these for the rest)"
    )
    group.add_argument(
        "--coordinator_address", metavar="HOST:PORT",
        help="address of process 0, the same on every process",
    )  # fmt: skip
    group.add_argument("--num_processes", type=int, metavar="N", help="processes in the run")
    group.add_argument("--process_id", type=int, metavar="I", help="this process's index, 0..N-1")
    return p


def _overrides(rest: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """The `--config.*` overrides among the arguments argparse did not know, each as one
    `--config.a.b=VALUE` (a value may follow as the next argument); anything else is an error."""
    overrides, unknown, i = [], [], 0
    while i < len(rest):
        arg = rest[i]
        if not config_args.is_override(arg):
            unknown.append(arg)
        elif "=" not in arg and i + 1 < len(rest) and not rest[i + 1].startswith("--"):
            overrides.append(f"{arg}={rest[i + 1]}")
            i += 1
        else:
            overrides.append(arg)
        i += 1
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return overrides


def parse_config(argv: list[str], parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line of any command that takes `--config=FILE.py[:ARG]` and `--config.X=V`
    overrides: `.config` the loaded, locked ConfigDict (overrides applied), and the parser's own
    options. `--help` prints the help with the config fields and exits (SystemExit 0)."""
    args, rest = parser.parse_known_args(argv)
    overrides = _overrides(rest, parser)
    if args.help:
        config = config_args.load(args.config, overrides) if args.config else None
        parser.epilog = f"{config_help.help_text(args.config, config)}\n\n{parser.epilog}"
        parser.print_help()
        parser.exit()
    if not args.config:
        raise UserError("--config=FILE.py[:ARG] is required (e.g. configs/pretrain.py:base)")
    args.config = config_args.load(args.config, overrides)
    return args


def parse(argv: list[str], parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line of a training run: `parse_config`'s, plus a required `.workdir` and the
    multi-process options."""
    args = parse_config(argv, parser)
    if not args.workdir:
        raise UserError("--workdir is required (checkpoints and TensorBoard logs go there)")
    return args


def train(argv: list[str], parser: argparse.ArgumentParser, task_builder: Callable[[], Callable]):
    """(parsed arguments, summaries) of a run of `task_builder()`'s task (imported only after
    the processes joined); summaries is None when training diverged (reported on stderr)."""
    args = parse(argv, parser)

    from bert_jax import distributed

    # Before anything touches a device.
    distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)

    from bert_jax.trainer import loop

    try:
        return args, loop.train_and_evaluate(args.config, args.workdir, task_builder())
    except loop.Diverged as e:
        print(f"{parser.prog}: training diverged: {e}", file=sys.stderr)
        return args, None
