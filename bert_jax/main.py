"""`bert-jax` command line: one subcommand per module under `bert_jax/cli/`.

Subcommand modules are imported only when chosen, so `bert-jax tokenize` never loads JAX and
`bert-jax pretrain` on an accelerator host loads TensorFlow only inside the data pipeline. Every
command parses its arguments with `bert_jax.cli.parser.command_parser` (argparse): the same
help layout, and a mistake on the command line is one line (`bert-jax CMD: error: ...`, exit 2).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bert_jax.cli.parser import command_parser
from bert_jax.errors import UserError

# name -> (module under bert_jax.cli, one-line help). Each module defines `main(argv) -> int`.
COMMANDS = {
    "prepare": ("prepare", "tokenize a corpus into pretraining shards"),
    "pretrain": ("pretrain", "pretrain BERT (MLM + NSP) on a device mesh"),
    "finetune": ("finetune", "fine-tune an encoder: GLUE, SQuAD, CoNLL-2003 NER, SWAG"),
    "evaluate": ("evaluate", "re-score a fine-tuned run, or score a predictions file"),
    "predict": ("predict", "predict the lines on stdin with a fine-tuned run"),
    "plot": ("plot", "PNG curves of one or more runs from their TensorBoard logs"),
    "checkpoints": ("checkpoints", "list and export the checkpoints of a workdir"),
    "convert": ("convert", "import Hugging Face / Google TF checkpoints, export to Hugging Face"),
    "embed": ("embed", "embeddings for lines on stdin, from any supported checkpoint"),
    "tokenize": ("tokenize", "token ids for lines on stdin"),
    "plan": ("plan", "compile the train step for a TPU topology: HBM, FLOPs, step time, fit"),
    "bench": ("bench", "benchmarks: tokenize, data, step, checkpoint, finetune, squad_decode"),
}

DESCRIPTION = """\
BERT pretraining and fine-tuning in JAX: one command line from a corpus to a fine-tuned model,
on one CPU, local GPUs or a TPU pod slice.

commands:
{commands}

`bert-jax COMMAND --help` (or `bert-jax help COMMAND`) explains a command, with its options and
examples; `bert-jax pretrain --help` and `bert-jax finetune --help` also list the config fields."""

EXAMPLES = [
    "bert-jax pretrain --config=configs/pretrain.py:quickstart --workdir=workdir/quickstart",
    "bert-jax plot workdir/quickstart          # its loss and accuracy curves as PNGs",
    "bert-jax help finetune",
]


def _parser():
    commands = "\n".join(f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items())
    parser = command_parser("bert-jax", DESCRIPTION.format(commands=commands), EXAMPLES)
    parser.usage = "%(prog)s COMMAND [options]   (bert-jax COMMAND --help for each)"
    parser.add_argument("command", metavar="COMMAND", help=argparse.SUPPRESS)
    return parser


def _exit_code(e: SystemExit) -> int:
    """The status of an argparse exit (--help: 0) as `main` returns it."""
    if e.code is None or isinstance(e.code, int):
        return e.code or 0
    print(e.code, file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["help"]:  # `bert-jax help COMMAND [BENCHMARK]` is COMMAND [BENCHMARK] --help
        argv = [*argv[1:], "--help"]
    if not argv:
        _parser().print_help()
        return 2
    if argv[0] not in COMMANDS:
        try:
            _parser().parse_args(argv[:1])  # prints the help, or names the unknown option
            raise UserError(f"unknown command {argv[0]!r}: one of {', '.join(COMMANDS)}")
        except SystemExit as e:
            return _exit_code(e)
        except UserError as e:
            print(f"bert-jax: error: {e}", file=sys.stderr)
            return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(f"bert_jax.cli.{COMMANDS[name][0]}")
    try:
        return int(module.main(rest) or 0)
    except UserError as e:
        print(f"bert-jax {name}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # argparse after --help
        return _exit_code(e)
    except KeyboardInterrupt:
        print(f"bert-jax {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
