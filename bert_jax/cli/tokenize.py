"""`bert-jax tokenize --vocab=PATH [--cased] [--special]`: token ids for the lines on stdin.

One output line per input line, ids separated by spaces. A tab splits a line into the two texts of
a pair; with --special the ids are `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, otherwise a's ids
followed by b's. stdin is read as UTF-8 (bad bytes become U+FFFD) in chunks, each encoded as one
parallel batch.
"""

from __future__ import annotations

import argparse
import os
import sys

from bert_jax.cli.parser import command_parser
from bert_jax.errors import UserError

CHUNK_BYTES = 1 << 20


DESCRIPTION = """\
Token ids for the lines on stdin, one output line per input line, ids separated by spaces.

A tab splits a line into the two texts of a pair: with --special the ids are [CLS] a [SEP] b
[SEP] (or [CLS] a [SEP] for one text), otherwise a's ids followed by b's. --vocab is a WordPiece
vocab.txt (or the directory holding it) or a SentencePiece .model; a cased WordPiece vocabulary
is detected from its entries. stdin is read as UTF-8 (bad bytes become U+FFFD) in chunks, each
encoded as one parallel batch, so files of any size stream through."""

EXAMPLES = [
    "echo 'Hello, world!' | bert-jax tokenize --vocab=workdir/quickstart/demo_data/text/vocab.txt",
    "printf 'The cat sat.\\tIt was tired.\\n' | bert-jax tokenize --vocab=vocab.txt --special",
]


def _parser() -> argparse.ArgumentParser:
    p = command_parser("bert-jax tokenize", DESCRIPTION, EXAMPLES)
    p.add_argument("--vocab", required=True, help="vocab.txt (or its directory), or a .model file")
    p.add_argument(
        "--cased",
        action="store_true",
        help="keep case and accents (a cased vocab is detected without it)",
    )
    p.add_argument("--special", action="store_true", help="add [CLS] and [SEP]")
    return p


def _ids_lines(tokenizer, lines: list[bytes], first_line: int, special: bool) -> list[str]:
    pairs = []
    for n, raw in enumerate(lines, start=first_line):
        fields = raw.rstrip(b"\r\n").decode("utf-8", errors="replace").split("\t")
        if len(fields) > 2:
            raise UserError(
                f"stdin line {n} has {len(fields)} tab-separated fields; "
                "expected one text, or two for a pair"
            )
        pairs.append(fields)
    ids_a = tokenizer.encode_batch([f[0] for f in pairs])
    pair_rows = [i for i, f in enumerate(pairs) if len(f) == 2]
    ids_b = dict(
        zip(pair_rows, tokenizer.encode_batch([pairs[i][1] for i in pair_rows]), strict=True)
    )
    out = []
    for i, a in enumerate(ids_a):
        b = ids_b.get(i)
        if special:
            ids = [tokenizer.cls_id, *a, tokenizer.sep_id]
            if b is not None:
                ids += [*b, tokenizer.sep_id]
        else:
            ids = a if b is None else a + b
        out.append(" ".join(map(str, ids)) + "\n")
    return out


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from bert_jax.text.load import load_tokenizer

    tokenizer = load_tokenizer(args.vocab, lowercase=False if args.cased else None)
    stdin, stdout = sys.stdin.buffer, sys.stdout
    line_number = 1
    try:
        while lines := stdin.readlines(CHUNK_BYTES):
            stdout.writelines(_ids_lines(tokenizer, lines, line_number, args.special))
            line_number += len(lines)
        stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error. Point stdout at devnull so the
        # interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
