"""`bert-jax bench NAME [options]`: dispatch to `bert_jax.bench.NAME.main`."""

from __future__ import annotations

import argparse
import importlib

from bert_jax.cli.parser import command_parser
from bert_jax.errors import UserError

BENCHMARKS = {
    "tokenize": "tokenizer MB/s beside tokenizers' encode_batch_fast and BertTokenizerFast",
    "data": "pretraining pipeline and masking-stage throughput (seq/s), peak memory",
    "step": "train-step time and model FLOP/s, MLM on masked and on all positions; HF peers",
    "checkpoint": "time the loop is blocked by an async save, and the write rate",
    "finetune": "MRPC fine-tuning seq/s and model FLOP/s; HF PyTorch on the same batches",
    "squad_decode": "SQuAD post-processing of the full dev set from saved logits (questions/s)",
}

DESCRIPTION = """\
Benchmarks of bert-jax's parts on this machine, each printing a readable table (and with --json
one JSON object on its last line); several compare against a peer (Hugging Face, Flax,
keras-hub) run in its own virtual environment with --peer_python.

benchmarks:
{benchmarks}

`bert-jax bench NAME --help` explains one, with its options."""

EXAMPLES = [
    "bert-jax bench step --size tiny --steps 3      # seconds on a CPU",
    "bert-jax bench step --size base --batch 256 --dtype bfloat16 --matmul 8192 --json",
    "bert-jax bench data --json",
]


def _parser() -> argparse.ArgumentParser:
    table = "\n".join(f"  {name:<13} {help_}" for name, help_ in BENCHMARKS.items())
    p = command_parser("bert-jax bench", DESCRIPTION.format(benchmarks=table), EXAMPLES)
    p.usage = "%(prog)s NAME [options]"
    p.add_argument("name", metavar="NAME", help=argparse.SUPPRESS)
    return p


def main(argv: list[str]) -> int:
    if argv and argv[0] in BENCHMARKS:
        return int(importlib.import_module(f"bert_jax.bench.{argv[0]}").main(argv[1:]) or 0)
    if not argv:
        _parser().print_help()
        return 2
    _parser().parse_args(argv[:1])  # --help, or a misspelt option
    raise UserError(f"unknown benchmark {argv[0]!r}; choose one of {', '.join(BENCHMARKS)}")
