"""`bert-jax bench NAME [options]`: dispatch to `bert_jax.bench.NAME.main`."""

from __future__ import annotations

import importlib

from bert_jax.errors import UserError

BENCHMARKS = {
    "tokenize": "tokenizer MB/s beside tokenizers' encode_batch_fast and BertTokenizerFast",
    "data": "pretraining pipeline and masking-stage throughput (seq/s), peak memory",
    "step": "train-step time and model FLOP/s, MLM on masked and on all positions; HF peers",
    "checkpoint": "time the loop is blocked by an async save, and the write rate",
    "finetune": "MRPC fine-tuning seq/s and model FLOP/s; HF PyTorch on the same batches",
    "squad_decode": "SQuAD post-processing of the full dev set from saved logits (questions/s)",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: bert-jax bench NAME [--json] [options]\n")
        for name, help_ in BENCHMARKS.items():
            print(f"  {name:<13} {help_}")
        return 0
    if argv[0] not in BENCHMARKS:
        raise UserError(f"unknown benchmark {argv[0]!r}; choose one of {', '.join(BENCHMARKS)}")
    return int(importlib.import_module(f"bert_jax.bench.{argv[0]}").main(argv[1:]) or 0)
