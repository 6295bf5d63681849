"""`bert-jax embed --init_from=PATH --output=FILE.npy [--pooling=cls|mean|pooler|none] ...`

Embeds the lines on stdin (UTF-8; a tab splits a line into the two segments of a pair) with
the encoder of any checkpoint `load_pretrained` reads, and saves float32 arrays:

  cls     [n, H]  the last hidden state of [CLS] (no pooler; what most feature extractors use)
  pooler  [n, H]  BERT's pooled output, tanh(W h_[CLS] + b) (needs a pooler in the checkpoint)
  mean    [n, H]  the mean of the last hidden states over the real tokens ([CLS]/[SEP] included,
                  padding excluded), as sentence-transformers pools
  none    [n, L, H] every last hidden state, zero-padded to the longest line L; the token
                  counts go beside it in FILE.lengths.npy ([n] int32)

Lines are tokenized with the checkpoint's vocab.txt (or --vocab), [CLS] a [SEP] (b [SEP]), cut
to --max_len tokens. They are sorted by length and run in batches padded to a power of two, so
only a few shapes are compiled; the output keeps the input order.
"""

from __future__ import annotations

import argparse
import io
import os
import sys

import numpy as np

from bert_jax import paths
from bert_jax.cli.parser import command_parser
from bert_jax.errors import UserError

POOLINGS = ("cls", "mean", "pooler", "none")
MIN_BUCKET = 16


DESCRIPTION = """\
Embeddings of the lines on stdin (UTF-8; a tab splits a line into the two segments of a pair),
saved as float32 arrays in a .npy file, from the encoder of any checkpoint: a bert-jax workdir
or step, a Hugging Face BERT directory, or a Google TF checkpoint.

  cls     [n, H]     the last hidden state of [CLS] (what most feature extractors use)
  pooler  [n, H]     BERT's pooled output, tanh(W h_[CLS] + b) (needs a pooler in the checkpoint)
  mean    [n, H]     the mean of the last hidden states over the real tokens (sentence-transformers)
  none    [n, L, H]  every last hidden state, zero-padded to the longest line L; the token counts
                     go beside it in FILE.lengths.npy

Lines are tokenized with the checkpoint's vocab.txt (or --vocab) as [CLS] a [SEP] (b [SEP]), cut
to --max_len tokens, and run sorted by length in batches padded to a power of two (few compiled
shapes); the output keeps the input order."""

EXAMPLES = [
    "printf 'A cat.\\nA dog.\\n' | bert-jax embed --init_from=workdir/quickstart \\\n"
    "    --vocab=workdir/quickstart/demo_data/text/vocab.txt --output=/tmp/vectors.npy",
    "bert-jax embed --init_from=HF_BERT_DIR --pooling=mean --output=vectors.npy < sentences.txt",
]


def _parser() -> argparse.ArgumentParser:
    p = command_parser("bert-jax embed", DESCRIPTION, EXAMPLES)
    p.add_argument(
        "--init_from", required=True, metavar="PATH", help="checkpoint (HF dir, TF ckpt, bert-jax)"
    )
    p.add_argument("--output", required=True, metavar="FILE.npy", help="file to write")
    p.add_argument(
        "--pooling", choices=POOLINGS, default="cls", help="what to save per line (table above)"
    )
    p.add_argument("--max_len", type=int, default=512, help="tokens per line, [CLS]/[SEP] incl.")
    p.add_argument("--vocab", help="vocab.txt or .model (default: vocab.txt beside the checkpoint)")
    p.add_argument("--batch_size", type=int, default=32, help="lines run together")
    case = p.add_mutually_exclusive_group()
    case.add_argument("--cased", action="store_true", help="keep case and accents")
    case.add_argument("--uncased", action="store_true", help="lowercase and strip accents")
    return p


def lowercase_of(args, init_from: str) -> bool | None:
    """--cased/--uncased, else the checkpoint's tokenizer_config.json `do_lower_case`, else
    None (the tokenizer's default: uncased for WordPiece)."""
    if args.cased or args.uncased:
        return bool(args.uncased)
    from bert_jax.interop.hf_tokenizer import casing_beside

    return casing_beside(init_from)


def read_lines(stream) -> list[tuple[str, str | None]]:
    texts = []
    for n, raw in enumerate(stream.read().decode("utf-8", errors="replace").splitlines(), 1):
        fields = raw.split("\t")
        if len(fields) > 2:
            raise UserError(
                f"stdin line {n} has {len(fields)} tab-separated fields; expected 1 or 2"
            )
        texts.append((fields[0], fields[1] if len(fields) == 2 else None))
    return texts


def bucket(length: int, limit: int) -> int:
    """The padded length for a batch whose longest row has `length` tokens."""
    padded = MIN_BUCKET
    while padded < length:
        padded *= 2
    return min(padded, limit)


def make_forward(config, pooling: str):
    import jax
    import jax.numpy as jnp

    from bert_jax.model.bert import BertModel

    model = BertModel(config, add_pooler=pooling == "pooler")

    @jax.jit
    def forward(params, ids, segments, mask):
        seq, pooled = model.apply({"params": params}, ids, segments, mask)
        if pooling == "cls":
            return seq[:, 0]
        if pooling == "pooler":
            return pooled
        if pooling == "mean":
            weights = mask[..., None].astype(seq.dtype)
            return (seq * weights).sum(1) / jnp.maximum(weights.sum(1), 1.0)
        return seq

    return forward


def embed(config, bert_params: dict, encoded: list, pooling: str, batch_size: int) -> np.ndarray:
    """Embeddings of `encoded` (tokenized rows, each with .input_ids/.segment_ids), in order;
    a progress bar (`bert_jax/progress.py`) counts the lines done."""
    from bert_jax import progress

    if pooling != "pooler":
        bert_params = {k: v for k, v in bert_params.items() if k != "pooler"}
    forward = make_forward(config, pooling)
    lengths = np.array([len(e.input_ids) for e in encoded])
    longest = int(lengths.max(initial=0))
    order = np.argsort(-lengths, kind="stable")
    rows = min(batch_size, bucket(len(encoded), batch_size))
    hidden = config.hidden_size
    shape = (len(encoded), longest, hidden) if pooling == "none" else (len(encoded), hidden)
    out = np.zeros(shape, np.float32)
    bar = progress.bar(total=len(encoded), desc="embed", unit="line")
    for start in range(0, len(encoded), rows):
        chosen = order[start : start + rows]
        width = bucket(int(lengths[chosen].max()), config.max_position_embeddings)
        ids = np.zeros((rows, width), np.int32)
        segments = np.zeros((rows, width), np.int32)
        mask = np.zeros((rows, width), np.int32)
        for row, index in enumerate(chosen):
            n = lengths[index]
            ids[row, :n] = encoded[index].input_ids
            segments[row, :n] = encoded[index].segment_ids
            mask[row, :n] = 1
        result = np.asarray(forward(bert_params, ids, segments, mask), np.float32)
        for row, index in enumerate(chosen):
            if pooling == "none":
                n = lengths[index]
                out[index, :n] = result[row, :n]
            else:
                out[index] = result[row]
        bar.update(len(chosen))
    bar.close()
    return out


def _save_npy(target: paths.Path, array: np.ndarray) -> None:
    """np.save to a local or gs:// file."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    paths.write_atomic(os.fspath(target), buffer.getvalue())


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    output = paths.path(args.output)
    if output.suffix != ".npy":
        raise UserError(f"--output {output} must end in .npy")
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be positive, got {args.batch_size}")
    import time

    from bert_jax.interop.load import format_report, load_pretrained, vocab_beside
    from bert_jax.text.load import load_tokenizer

    started = time.perf_counter()
    config, params, report = load_pretrained(args.init_from)
    if args.max_len > config.max_position_embeddings or args.max_len < 2:
        raise UserError(
            f"--max_len {args.max_len} is outside 2..{config.max_position_embeddings} "
            "(the checkpoint's max_position_embeddings)"
        )
    bert = params["bert"]
    if args.pooling == "pooler" and "pooler" not in bert:
        raise UserError(f"{args.init_from} has no pooler weights; use --pooling=cls or mean")
    vocab = args.vocab or vocab_beside(args.init_from)
    if vocab is None:
        raise UserError(f"no vocab.txt beside {args.init_from}; pass --vocab")
    tokenizer = load_tokenizer(vocab, lowercase=lowercase_of(args, args.init_from))
    if tokenizer.vocab_size != config.vocab_size:
        raise UserError(
            f"{vocab} has {tokenizer.vocab_size} entries, "
            f"the embedding table has {config.vocab_size} rows"
        )
    # Only the summary: the MLM/NSP heads a checkpoint may lack do not matter here.
    print(format_report(report).splitlines()[0], file=sys.stderr)

    from bert_jax import progress
    from bert_jax.report_table import SummaryTable, duration

    texts = read_lines(sys.stdin.buffer)
    lines = progress.bar(texts, desc="tokenize", unit="line")
    encoded = [tokenizer.encode_example(a, b, max_length=args.max_len) for a, b in lines]
    vectors = embed(config, bert, encoded, args.pooling, args.batch_size)
    _save_npy(output, vectors)
    message = f"wrote {output}: {args.pooling} embeddings, shape {list(vectors.shape)}"
    table = SummaryTable("embed: summary")
    table.add("read", f"{args.init_from} ({report['format']})")
    table.add("lines", len(encoded))
    table.add("written", f"{output} ({args.pooling} embeddings, shape {list(vectors.shape)})")
    if args.pooling == "none":
        lengths_file = output.with_suffix(".lengths.npy")
        _save_npy(lengths_file, np.array([len(e.input_ids) for e in encoded], np.int32))
        message += f"; token counts in {lengths_file}"
        table.add("token counts", str(lengths_file))
    print(message, file=sys.stderr)
    table.add("time", duration(time.perf_counter() - started))
    table.print()
    return 0
