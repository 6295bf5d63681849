"""`bert-jax convert --from=PATH --to=DIR [--format=hf|bert-jax] [--vocab=PATH]`.

Reads any checkpoint `load_pretrained` understands (Hugging Face directory, Google TF1
checkpoint, bert-jax checkpoint) and writes it as
  hf:       a Hugging Face directory (config.json, model.safetensors, vocab.txt) that
            `transformers` loads as BertForPreTraining (or BertModel when the source has no
            MLM/NSP heads: heads are never made up);
  bert-jax: a workdir holding one params-only Orbax checkpoint (DIR/checkpoints/0), usable as
            `init_from` (and by `embed`), plus vocab.txt.
The import report (loaded / missing / unused) is printed first. --from and --to may be local or
gs:// paths (a Google TF checkpoint's variables on gs:// are read by TensorFlow's own reader).
"""

from __future__ import annotations

import argparse

from bert_jax import paths
from bert_jax.cli.parser import command_parser
from bert_jax.errors import UserError

FORMATS = ("hf", "bert-jax")


DESCRIPTION = """\
Convert a BERT checkpoint: read any checkpoint bert-jax understands (a Hugging Face directory, a
Google TF1 checkpoint, a bert-jax workdir or step) and write it as

  hf        a Hugging Face directory (config.json, model.safetensors, vocab.txt) that
            transformers loads as BertForPreTraining (or BertModel when the source has no MLM/NSP
            heads: heads are never made up);
  bert-jax  a workdir holding one params-only checkpoint (DIR/checkpoints/0), usable as
            --config.init_from (and by `bert-jax embed`), plus vocab.txt.

The import report (loaded / missing / unused weights) is printed first. --from and --to may be
local or gs:// paths. To export a step of a training run, `bert-jax checkpoints WORKDIR
--export=STEP --to=DIR` also writes its tokenizer settings and task head."""

EXAMPLES = [
    "bert-jax convert --from=workdir/quickstart --to=/tmp/quickstart_hf \\\n"
    "    --vocab=workdir/quickstart/demo_data/text/vocab.txt",
    "bert-jax convert --from=uncased_L-12_H-768_A-12 --to=ckpt/base --format=bert-jax\n"
    "    # Google's TF checkpoint directory as a bert-jax init_from",
]


def _parser() -> argparse.ArgumentParser:
    p = command_parser("bert-jax convert", DESCRIPTION, EXAMPLES)
    p.add_argument(
        "--from", dest="source", required=True, metavar="PATH", help="checkpoint to read"
    )
    p.add_argument(
        "--to", dest="target", required=True, metavar="DIR", help="directory to write (new/empty)"
    )
    p.add_argument("--format", choices=FORMATS, default="hf", help="what to write")
    p.add_argument(
        "--vocab", help="vocab.txt to copy alongside (default: the one beside the checkpoint)"
    )
    return p


def _check_target(target: paths.Path) -> None:
    try:
        taken = target.exists() and (not target.is_dir() or any(target.iterdir()))
    except Exception as e:  # gcsfs/google-auth: no credentials, no such bucket
        raise UserError(paths.describe_error(target, e)) from None
    if taken:
        raise UserError(f"--to {target} exists and is not an empty directory")


def _save_bert_jax(params: dict, config, target: paths.Path) -> list[str]:
    """Params alone (no optimizer state) as step 0 of a workdir: `init_from` reads it."""
    from bert_jax.checkpoint.manager import Checkpointer

    metadata = {"model": config.to_dict(), "scan_layers": config.scan_layers}
    checkpointer = Checkpointer(target, {"async_save": False}, metadata)
    try:
        checkpointer.save(0, {"params": params}, None, force=True)
        checkpointer.wait()
    finally:
        checkpointer.close()
    return [str(checkpointer.directory / "0")]


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    import time

    from bert_jax.interop import hf, hf_tokenizer
    from bert_jax.interop.load import format_report, load_pretrained, vocab_beside
    from bert_jax.report_table import SummaryTable, duration

    started = time.perf_counter()
    target = paths.path(args.target)
    _check_target(target)
    config, params, report = load_pretrained(args.source)
    print(format_report(report))
    vocab = paths.path(args.vocab) if args.vocab else vocab_beside(args.source)
    if vocab is not None:
        hf.check_vocab(vocab, config.vocab_size)

    table = SummaryTable("convert: summary")
    table.add("read", f"{report['source']} ({report['format']})")
    table.add(
        "params",
        f"{len(report['loaded'])} loaded, {len(report['missing'])} missing, "
        f"{len(report['unused'])} unused",
    )
    if args.format == "hf":
        lowercase = hf_tokenizer.casing_beside(args.source)
        written = hf.save_hf(params, config, target, vocab=vocab, lowercase=lowercase)
        print(f"wrote {target} as {written['architecture']}: {', '.join(written['files'])}")
        if written["absent"]:
            print(f"  not written (absent in the source): {len(written['absent'])} head weights")
        table.add("written", f"{target} (Hugging Face {written['architecture']})")
        table.add("files", ", ".join(written["files"]))
    else:
        steps = _save_bert_jax(params, config, target)
        if vocab is not None:
            (target / "vocab.txt").write_bytes(vocab.read_bytes())
        print(f"wrote {target}: params checkpoint {steps[0]}")
        table.add("written", f"{target} (bert-jax params checkpoint {steps[0]})")
    if vocab is None:
        print("no vocab.txt beside the source and no --vocab: none written")
    table.add("vocabulary", str(vocab) if vocab is not None else "none written")
    table.add("time", duration(time.perf_counter() - started))
    table.print()
    return 0
