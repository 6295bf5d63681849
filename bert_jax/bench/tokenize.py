"""`bert-jax bench tokenize`: tokenizer throughput on a corpus, beside `BertTokenizerFast`.

Encodes every non-blank line of the corpus with `encode_batch` (best of --repeat runs) and, when
`transformers` is installed and the vocab is WordPiece, with Hugging Face's `BertTokenizerFast` on
the same lines, and counts the lines whose ids differ.
"""

from __future__ import annotations

import argparse
import pathlib
import time

from bert_jax.bench.report import emit, peak_rss_mb
from bert_jax.errors import UserError

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEFAULT_CORPUS = SHARED_DATA / "corpus" / "gutenberg"
DEFAULT_VOCAB = SHARED_DATA / "vocab" / "bert-base-uncased" / "vocab.txt"


def read_corpus_lines(corpus: pathlib.Path) -> list[str]:
    """Non-blank lines of a file, or of the *.txt files of a directory (sorted), as UTF-8 with
    bad bytes replaced (corpora hold stray Latin-1)."""
    if not corpus.exists():
        raise UserError(f"corpus {corpus} does not exist")
    files = sorted(corpus.glob("*.txt")) if corpus.is_dir() else [corpus]
    if not files:
        raise UserError(f"corpus directory {corpus} holds no .txt files")
    lines: list[str] = []
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        lines += [line for line in text.splitlines() if line.strip()]
    return lines


def _best_times(fns: list, repeat: int) -> list[tuple[float, object]]:
    """Best wall time and result of each function; runs alternate so that load from other
    processes on the machine hits all of them alike."""
    best = [(float("inf"), None)] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            result = fn()
            best[k] = (min(best[k][0], time.perf_counter() - start), result)
    return best


def _hf_fast(vocab: str, lowercase: bool):
    """Hugging Face's fast BERT tokenizer on the same vocab, or None without transformers."""
    try:
        from transformers import BertTokenizerFast
    except ImportError:
        return None
    tokenizer = BertTokenizerFast(vocab, do_lower_case=lowercase)
    return lambda lines: tokenizer(lines, add_special_tokens=False)["input_ids"]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bert-jax bench tokenize", description=__doc__)
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="a text file or a directory")
    p.add_argument("--vocab", default=str(DEFAULT_VOCAB), help="vocab.txt or SentencePiece .model")
    p.add_argument("--cased", action="store_true", help="cased WordPiece")
    p.add_argument("--repeat", type=int, default=3, help="runs per tokenizer; the best counts")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = p.parse_args(argv)
    if args.repeat < 1:
        raise UserError(f"--repeat {args.repeat} must be at least 1")

    from bert_jax.data.tokenization import load_tokenizer

    tokenizer = load_tokenizer(args.vocab, lowercase=False if args.cased else None)
    lines = read_corpus_lines(pathlib.Path(args.corpus))
    megabytes = sum(len(line.encode("utf-8")) for line in lines) / 1e6
    hf = _hf_fast(args.vocab, tokenizer.lowercase) if tokenizer.kind == "wordpiece" else None
    fns = [lambda: tokenizer.encode_batch(lines)] + ([lambda: hf(lines)] if hf else [])
    timings = _best_times(fns, args.repeat)
    seconds, ours = timings[0]
    figures = {
        "corpus": args.corpus,
        "vocab": args.vocab,
        "kind": tokenizer.kind,
        "lowercase": tokenizer.lowercase,
        "lines": len(lines),
        "megabytes": round(megabytes, 3),
        "tokens": sum(map(len, ours)),
        "mb_per_s": megabytes / seconds,
        "lines_per_s": len(lines) / seconds,
    }
    rows = [
        ("corpus", f"{args.corpus} ({len(lines):,} lines, {megabytes:.2f} MB)"),
        ("tokenizer", f"{tokenizer.kind}, {'un' if tokenizer.lowercase else ''}cased"),
        ("tokens", f"{figures['tokens']:,}"),
        ("bert-jax MB/s", figures["mb_per_s"]),
        ("bert-jax lines/s", figures["lines_per_s"]),
    ]
    if hf is not None:
        hf_seconds, theirs = timings[1]
        differing = sum(a != b for a, b in zip(ours, theirs, strict=True))
        figures.update(
            hf_mb_per_s=megabytes / hf_seconds,
            hf_lines_per_s=len(lines) / hf_seconds,
            speedup_vs_hf=hf_seconds / seconds,
            lines_with_different_ids=differing,
        )
        rows += [
            ("BertTokenizerFast MB/s", figures["hf_mb_per_s"]),
            ("BertTokenizerFast lines/s", figures["hf_lines_per_s"]),
            ("speed-up", figures["speedup_vs_hf"]),
            ("lines with different ids", differing),
        ]
    else:
        rows.append(("BertTokenizerFast", "not compared (no transformers, or not WordPiece)"))
    figures["peak_rss_mb"] = peak_rss_mb()
    rows.append(("peak RSS MB", figures["peak_rss_mb"]))
    emit("tokenize", rows, figures, args.json)
    return 0
