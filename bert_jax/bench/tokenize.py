"""`bert-jax bench tokenize`: tokenizer throughput on a corpus, beside two peers on the same vocab.

bert-jax's WordPiece runs the Hugging Face `tokenizers` Rust library (batch encoding in
parallel threads, `Tokenizer.encode_batch_fast`) and checks each line in Python for the few
characters on which that pipeline differs from BERT's reference tokenizer (those lines take a
slower, exact path). The peers, for a WordPiece vocab:
  tokenizers encode_batch_fast  the same Rust library's own BERT pipeline
                                (`BertWordPieceTokenizer`: BertNormalizer, BertPreTokenizer,
                                WordPiece) through its fastest batch call, without offsets: what
                                calling the library directly costs, the floor for bert-jax;
  BertTokenizerFast             transformers' fast BERT tokenizer: the same Rust pipeline with
                                offsets and transformers' Python batch handling, what most
                                Python BERT code calls.
Every non-blank line of the corpus is encoded without special tokens, best of --repeat runs
(the runs alternate between tokenizers), and the lines whose ids differ from ours are counted.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable

from bert_jax import paths
from bert_jax.bench.report import emit, peak_rss_mb
from bert_jax.cli.parser import command_parser
from bert_jax.errors import UserError

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEFAULT_CORPUS = SHARED_DATA / "corpus" / "gutenberg"
DEFAULT_VOCAB = SHARED_DATA / "vocab" / "bert-base-uncased" / "vocab.txt"

EXAMPLES = [
    "bert-jax bench tokenize                     # the Gutenberg corpus, bert-base-uncased vocab",
    "bert-jax bench tokenize --corpus=workdir/quickstart/demo_data/text/corpus.txt \\\n"
    "    --vocab=workdir/quickstart/demo_data/text/vocab.txt --json",
]


def read_corpus_lines(corpus: paths.PathLike) -> list[str]:
    """Non-blank lines of a file, or of the *.txt files of a directory (sorted), local or
    gs://, as UTF-8 with bad bytes replaced (corpora hold stray Latin-1)."""
    corpus = paths.path(corpus)
    if not corpus.exists():
        raise UserError(f"corpus {corpus} does not exist")
    files = sorted(corpus.glob("*.txt")) if corpus.is_dir() else [corpus]
    if not files:
        raise UserError(f"corpus directory {corpus} holds no .txt files")
    lines: list[str] = []
    for file in files:
        text = file.read_bytes().decode("utf-8", errors="replace")
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


def peer_encoders(vocab: str, lowercase: bool) -> dict[str, Callable]:
    """The peers on the same WordPiece vocab and casing, each `lines -> ids per line` (see the
    module docstring); BertTokenizerFast only where transformers is installed."""
    from tokenizers import BertWordPieceTokenizer, Tokenizer

    # The library's BERT pipeline, as a plain `Tokenizer` (which has `encode_batch_fast`).
    rust = Tokenizer.from_str(BertWordPieceTokenizer(vocab, lowercase=lowercase).to_str())
    encoders = {
        "tokenizers encode_batch_fast": lambda lines: [
            e.ids for e in rust.encode_batch_fast(lines, add_special_tokens=False)
        ]
    }
    try:
        from transformers import BertTokenizerFast
    except ImportError:
        return encoders
    hf = BertTokenizerFast(vocab, do_lower_case=lowercase)
    encoders["BertTokenizerFast"] = lambda lines: hf(lines, add_special_tokens=False)["input_ids"]
    return encoders


def main(argv: list[str]) -> int:
    p = command_parser("bert-jax bench tokenize", __doc__, EXAMPLES)
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="a text file or a directory")
    p.add_argument("--vocab", default=str(DEFAULT_VOCAB), help="vocab.txt or SentencePiece .model")
    p.add_argument("--cased", action="store_true", help="cased WordPiece")
    p.add_argument("--repeat", type=int, default=3, help="runs per tokenizer; the best counts")
    p.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = p.parse_args(argv)
    if args.repeat < 1:
        raise UserError(f"--repeat {args.repeat} must be at least 1")

    from bert_jax.text.load import load_tokenizer

    tokenizer = load_tokenizer(args.vocab, lowercase=False if args.cased else None)
    lines = read_corpus_lines(args.corpus)
    megabytes = sum(len(line.encode("utf-8")) for line in lines) / 1e6
    peers = peer_encoders(args.vocab, tokenizer.lowercase) if tokenizer.kind == "wordpiece" else {}
    fns = [lambda: tokenizer.encode_batch(lines)]
    fns += [lambda encode=encode: encode(lines) for encode in peers.values()]
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
        "peers": {},
    }
    rows = [
        ("corpus", f"{args.corpus} ({len(lines):,} lines, {megabytes:.2f} MB)"),
        ("tokenizer", f"{tokenizer.kind}, {'un' if tokenizer.lowercase else ''}cased"),
        ("tokens", f"{figures['tokens']:,}"),
        ("bert-jax", _rate(megabytes, len(lines), seconds)),
    ]
    for name, (peer_seconds, theirs) in zip(peers, timings[1:], strict=True):
        differing = sum(a != b for a, b in zip(ours, theirs, strict=True))
        figures["peers"][name] = {
            "mb_per_s": megabytes / peer_seconds,
            "lines_per_s": len(lines) / peer_seconds,
            "speedup": peer_seconds / seconds,
            "lines_with_different_ids": differing,
        }
        rows += [
            (name, _rate(megabytes, len(lines), peer_seconds)),
            ("  bert-jax speed-up over it", f"{peer_seconds / seconds:.2f}x"),
            ("  lines with ids unlike bert-jax's", differing),
        ]
    if not peers:
        rows.append(("peers", "not compared (not a WordPiece vocab)"))
    elif "BertTokenizerFast" not in peers:
        rows.append(("BertTokenizerFast", "not compared (transformers not installed)"))
    figures["peak_rss_mb"] = peak_rss_mb()
    rows.append(("peak RSS MB", figures["peak_rss_mb"]))
    emit("tokenize", rows, figures, args.json)
    return 0


def _rate(megabytes: float, lines: int, seconds: float) -> str:
    return f"{megabytes / seconds:.2f} MB/s, {lines / seconds:,.0f} lines/s"
