"""`bert-jax bench squad_decode`: SQuAD post-processing time, from saved logits to the answers.

  bert-jax bench squad_decode                      # ../shared/data/squad/dev-v1.1.json
  bert-jax bench squad_decode --data=dev-v2.0.json --version_2 --json

The questions of --data become windows as fine-tuning makes them (--max_length 384,
--doc_stride 128, --max_query 64 tokens, the --vocab's WordPiece); their start and end logits
are seeded random normals, written to an .npz in a temporary folder as evaluation would save
them. Each timed run loads that file, decodes every question (n-best 20, answers of at most 30
tokens, `bert_jax.tasks.squad_decode`) and writes predictions.json and nbest.json (and
null_odds.json with --version_2); the median of --repeat runs counts.

Random logits give fewer valid (start, end) pairs per window than a trained model's, whose
best starts and ends sit together in the context; the pair grid is the same size either way,
only the final sort is longer, and `--peaked` times logits shaped like a trained model's.
"""

from __future__ import annotations

import pathlib
import statistics
import tempfile
import time

import numpy as np

from bert_jax.bench import report
from bert_jax.cli.parser import command_parser, split_examples
from bert_jax.errors import UserError

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEFAULT_DATA = SHARED_DATA / "squad" / "dev-v1.1.json"
DEFAULT_VOCAB = SHARED_DATA / "vocab" / "bert-base-uncased" / "vocab.txt"


def _args(argv):
    description, examples = split_examples(__doc__)
    p = command_parser("bert-jax bench squad_decode", description, examples)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="a SQuAD JSON file")
    p.add_argument("--vocab", default=str(DEFAULT_VOCAB), help="vocab.txt or SentencePiece .model")
    p.add_argument("--max_length", type=int, default=384, help="tokens per window")
    p.add_argument("--doc_stride", type=int, default=128, help="tokens between window starts")
    p.add_argument("--max_query", type=int, default=64, help="questions cut to this many tokens")
    p.add_argument("--n_best", type=int, default=20, help="answers kept per question")
    p.add_argument("--max_answer_length", type=int, default=30, help="longest answer, in tokens")
    p.add_argument("--version_2", action="store_true", help="score the null answer (SQuAD v2.0)")
    p.add_argument(
        "--peaked",
        action="store_true",
        help="logits peaked on a few nearby context tokens per window, as a trained model's",
    )
    p.add_argument("--repeat", type=int, default=3, help="timed runs; the median counts")
    p.add_argument("--seed", type=int, default=0, help="seed of the random logits")
    p.add_argument("--json", action="store_true", help="one JSON object as the last line")
    args = p.parse_args(argv)
    if args.repeat < 1:
        raise UserError(f"--repeat {args.repeat} must be at least 1")
    return args


def random_logits(windows, length: int, seed: int, peaked: bool) -> tuple[np.ndarray, np.ndarray]:
    """Seeded standard normal start and end logits [W, length] (float32). `peaked`: plus 8 on
    a random context token of each window for the start and on the few tokens after it for the
    end, so that most of the best pairs are valid spans, as with a trained model."""
    rng = np.random.default_rng(seed)
    start = rng.standard_normal((len(windows.offsets), length), dtype=np.float32)
    end = rng.standard_normal((len(windows.offsets), length), dtype=np.float32)
    if peaked:
        for w, offsets in enumerate(windows.offsets):
            context = np.flatnonzero(np.asarray(offsets)[:, 0] >= 0)
            first = int(rng.choice(context))
            start[w, context[(context >= first - 3) & (context <= first + 3)]] += 8.0
            end[w, context[(context >= first) & (context <= first + 10)]] += 8.0
    return start, end


def main(argv: list[str]) -> int:
    args = _args(argv)
    from bert_jax.tasks import squad_decode
    from bert_jax.tasks.squad_data import read_squad
    from bert_jax.tasks.squad_windows import make_windows
    from bert_jax.text.load import load_tokenizer

    examples, _ = read_squad(args.data, training=False)
    tokenizer = load_tokenizer(args.vocab)
    began = time.perf_counter()
    windows = make_windows(
        tokenizer, examples, args.max_length, args.doc_stride, args.max_query, training=False
    )
    windowing_s = time.perf_counter() - began
    start, end = random_logits(windows, args.max_length, args.seed, args.peaked)

    def post_process(folder: pathlib.Path, logits_file: pathlib.Path):
        saved = np.load(logits_file)
        predictions = squad_decode.decode(
            saved["start_logits"], saved["end_logits"], windows, examples,
            version_2=args.version_2, n_best=args.n_best,
            max_answer_length=args.max_answer_length,
        )  # fmt: skip
        squad_decode.write_prediction_files(predictions, folder)
        return predictions

    times = []
    with tempfile.TemporaryDirectory(prefix="bert-jax-bench-squad-decode-") as tmp:
        folder = pathlib.Path(tmp)
        logits_file = folder / "logits.npz"
        np.savez(logits_file, start_logits=start, end_logits=end)
        for _ in range(args.repeat):
            began = time.perf_counter()
            predictions = post_process(folder, logits_file)
            times.append(time.perf_counter() - began)
        nbest_mb = (folder / squad_decode.NBEST_FILE).stat().st_size / 1e6
    seconds = statistics.median(times)
    answered = sum(
        text not in ("", squad_decode.PLACEHOLDER) for text in predictions.answers.values()
    )
    figures = {
        "data": args.data,
        "questions": len(examples),
        "windows": len(windows.offsets),
        "version_2": args.version_2,
        "peaked": args.peaked,
        "n_best": args.n_best,
        "max_answer_length": args.max_answer_length,
        "seconds": seconds,
        "seconds_all": times,
        "questions_per_s": len(examples) / seconds,
        "answered": answered,
        "nbest_mb": nbest_mb,
        "windowing_s": windowing_s,
        "peak_rss_mb": report.peak_rss_mb(),
    }
    rows = [
        ("data", args.data),
        ("questions", f"{len(examples):,}"),
        (
            f"windows ({args.max_length}/{args.doc_stride}/{args.max_query})",
            f"{len(windows.offsets):,}",
        ),
        ("logits", "peaked like a trained model's" if args.peaked else "random normal"),
        (
            "post-processing s (median)",
            f"{seconds:.3f}  (runs: {', '.join(f'{t:.3f}' for t in times)})",
        ),
        ("questions/s", len(examples) / seconds),
        ("questions with a span answer", f"{answered:,}"),
        ("nbest.json MB", nbest_mb),
        ("windowing s (not timed above)", windowing_s),
        ("peak RSS MB", figures["peak_rss_mb"]),
    ]
    report.emit("squad_decode", rows, figures, args.json)
    return 0
