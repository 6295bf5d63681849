"""`bert-jax` command line: one subcommand per module under `bert_jax/cli/`.

Subcommand modules are imported only when chosen, so `bert-jax tokenize` never loads JAX and
`bert-jax pretrain` on an accelerator host loads TensorFlow only inside the data pipeline.
"""

from __future__ import annotations

import importlib
import sys

from bert_jax.errors import UserError

# name -> (module under bert_jax.cli, one-line help). Each module defines `main(argv) -> int`.
COMMANDS = {
    "tokenize": ("tokenize", "token ids for lines on stdin"),
    "embed": ("embed", "embeddings for lines on stdin, from any supported checkpoint"),
    "convert": ("convert", "import Hugging Face / Google TF checkpoints, export to Hugging Face"),
    "prepare": ("prepare", "tokenize a corpus into pretraining shards"),
    "pretrain": ("pretrain", "pretrain BERT (MLM + NSP) on a device mesh"),
    "finetune": ("finetune", "fine-tune an encoder: GLUE, SQuAD, CoNLL-2003 NER, SWAG"),
    "evaluate": ("evaluate", "re-score a fine-tuned run, or score a predictions file"),
    "predict": ("predict", "predict the lines on stdin with a fine-tuned run"),
    "checkpoints": ("checkpoints", "list and export the checkpoints of a workdir"),
    "bench": ("bench", "benchmarks: tokenize, data, step, checkpoint, finetune, squad_decode"),
}


def _usage() -> str:
    lines = ["usage: bert-jax COMMAND [options]   (bert-jax COMMAND --help for each)", ""]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"bert-jax: error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bert_jax.cli.{COMMANDS[name][0]}")
    try:
        return int(module.main(rest) or 0)
    except UserError as e:
        print(f"bert-jax {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bert-jax {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
