"""`bert-jax bench data`: throughput of the pretraining input pipeline on this host.

Two figures, both in sequences per second:
- the whole pipeline (shards -> documents -> pairs -> batches -> masking), read from
  --data_dir, or from synthetic documents written to a temporary directory (random ids with
  realistic sentence and document lengths: 16 train shards of `prepare`'s layout);
- the masking stage alone, set up as keras-hub's peer benchmark: random ids with [CLS] at 0 and
  [SEP] at 64 and 127, batches from memory, rate 0.15, 20 predictions.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from bert_jax.bench import peers
from bert_jax.bench.report import emit, peak_rss_mb
from bert_jax.cli.parser import command_parser

EXAMPLES = [
    "bert-jax bench data                                  # synthetic shards in a temp dir",
    "bert-jax bench data --data_dir=/tmp/demo_shards --json",
    "bert-jax bench data --peer_python=MASKING_VENV/bin/python   # keras-hub's masking beside",
]

VOCAB_SIZE = 30522  # bert-base-uncased: [PAD] 0, [CLS] 101, [SEP] 102, [MASK] 103


def main(argv: list[str]) -> int:
    parser = command_parser("bert-jax bench data", __doc__, EXAMPLES)
    parser.add_argument("--data_dir", help="prepared shards (default: synthetic, in a temp dir)")
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    parser.add_argument("--batch_size", type=int, default=256, help="sequences per batch")
    parser.add_argument("--max_seq_length", type=int, default=128, help="tokens per sequence")
    parser.add_argument(
        "--max_predictions", type=int, default=20, help="masked positions per sequence"
    )
    parser.add_argument(
        "--mode", default="nsp", choices=("nsp", "sop", "mlm_only"), help="pair task (data.mode)"
    )
    parser.add_argument(
        "--whole_word_masking", action="store_true", help="mask all pieces of a word together"
    )
    parser.add_argument(
        "--pipeline_sequences", type=int, default=100_000, help="sequences the pipeline is timed on"
    )
    parser.add_argument(
        "--masking_sequences", type=int, default=200_000, help="sequences the masking is timed on"
    )
    parser.add_argument(
        "--prepare_corpus",
        help="also time `prepare` on this corpus (glob, prose) against BertTokenizerFast, per core",
    )
    parser.add_argument("--prepare_vocab", help="vocab.txt for --prepare_corpus")
    peers.add_peer_args(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from bert_jax.data.pretrain_config import PretrainDataConfig

    with tempfile.TemporaryDirectory() as scratch:
        data_dir, source = args.data_dir, "--data_dir"
        if data_dir is None:
            data_dir, source = scratch, "synthetic documents (16 shards)"
            write_synthetic_shards(data_dir)
        tokens = _special_tokens(data_dir, args.whole_word_masking)
        config = PretrainDataConfig(
            data_dir=data_dir,
            max_seq_length=args.max_seq_length,
            max_predictions_per_seq=args.max_predictions,
            mode=args.mode,
            whole_word_masking=args.whole_word_masking,
        )
        load_before = os.getloadavg()[0]
        pipeline_rate = _pipeline_rate(config, tokens, args.batch_size, args.pipeline_sequences)
        pipeline_rss = peak_rss_mb()  # the masking stage's 200k sequences in memory come after
        masking_rate = _masking_rate(config, tokens, args.batch_size, args.masking_sequences)

    figures = {
        "pipeline_seq_per_s": round(pipeline_rate),
        "masking_seq_per_s": round(masking_rate),
        "pipeline_peak_rss_mb": round(pipeline_rss, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_average_1m": round(load_before, 2),
        "source": source,
        "batch_size": args.batch_size,
        "max_seq_length": args.max_seq_length,
        "mode": args.mode,
        "whole_word_masking": args.whole_word_masking,
    }
    rows = [
        ("source", source),
        ("mode", f"{args.mode}, wwm={args.whole_word_masking}"),
        ("batch x seq", f"{args.batch_size} x {args.max_seq_length}"),
        ("whole pipeline (seq/s)", pipeline_rate),
        ("masking stage (seq/s)", masking_rate),
        ("peak memory after pipeline (MB)", pipeline_rss),
        ("peak memory at the end (MB)", peak_rss_mb()),
        ("load average before (1 min)", load_before),
    ]
    if args.prepare_corpus:
        prepare_rows, prepare_figures = _prepare_rates(args.prepare_corpus, args.prepare_vocab)
        rows, figures = rows + prepare_rows, {**figures, **prepare_figures}
    peer_rows, peer_figures = peers.compare_masking(args, masking_rate)
    rows, figures = rows + peer_rows, {**figures, **peer_figures}
    emit("bench data", rows, figures, args.json)
    return 0


def _prepare_rates(corpus: str, vocab: str | None) -> tuple[list, dict]:
    """`prepare` against Hugging Face BertTokenizerFast on the same text, MB/s per core."""
    from bert_jax.data.prepare_benchmark import prepare_benchmark
    from bert_jax.errors import UserError

    if not vocab:
        raise UserError("--prepare_corpus needs --prepare_vocab (the vocab.txt to tokenize with)")
    result = prepare_benchmark(corpus, vocab)
    rows = [("prepare, 1 core (MB/s)", result["prepare_mb_per_s_per_core"])]
    for name, rate in result["references_mb_per_s_per_core"].items():
        rows.append((f"{name}, 1 core (MB/s)", rate))
    if "prepare_mb_per_s_all_cores_processes" in result:
        rows.append(("prepare, all cores (MB/s)", result["prepare_mb_per_s_all_cores_processes"]))
    return rows, {"prepare": result}


def _pipeline_rate(config, tokens, batch_size: int, sequences: int) -> float:
    from bert_jax.data.pipeline import train_batches

    batches = train_batches(config, tokens, batch_size, process_index=0, process_count=1)
    for _ in range(4):  # warm-up: first round, tracing, prefetch filling
        next(batches)
    steps = max(1, sequences // batch_size)
    start = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return steps * batch_size / (time.perf_counter() - start)


def _masking_rate(config, tokens, batch_size: int, sequences: int) -> float:
    import tensorflow as tf

    from bert_jax.data.masking import make_masker

    length = config.max_seq_length
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, tokens.vocab_size, size=(sequences, length), dtype=np.int32)
    ids[:, 0], ids[:, length // 2], ids[:, -1] = tokens.cls_id, tokens.sep_id, tokens.sep_id
    mask = make_masker(config, tokens)
    features = {"input_ids": ids, "input_mask": np.ones_like(ids)}
    dataset = tf.data.Dataset.from_tensor_slices(features).batch(batch_size).enumerate()
    dataset = dataset.map(
        lambda step, batch: mask(batch, tf.stack([tf.constant(0, tf.int64), step])),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).prefetch(4)
    for _ in dataset.take(2):
        pass
    count, start = 0, time.perf_counter()
    for batch in dataset:
        count += int(batch["input_ids"].shape[0])
    return count / (time.perf_counter() - start)


def _special_tokens(data_dir: str, whole_word_masking: bool):
    """The tokenizer the shards were made with when metadata.json names one that is here;
    otherwise bert-base-uncased's special ids (and, for whole-word masking, a random table)."""
    from bert_jax import paths
    from bert_jax.data.pretrain_config import SpecialTokens
    from bert_jax.data.shard_reader import read_metadata

    made_with = (read_metadata(data_dir) or {}).get("tokenizer") or {}
    if made_with.get("path") and paths.path(made_with["path"]).exists():
        from bert_jax.text.load import load_tokenizer

        tokenizer = load_tokenizer(made_with["path"], lowercase=made_with.get("lowercase"))
        return SpecialTokens.from_tokenizer(tokenizer)
    vocab_size = int(made_with.get("vocab_size") or VOCAB_SIZE)
    # About one piece in five continues a word, as in WordPiece text.
    word_start = np.random.default_rng(1).random(vocab_size) > 0.2 if whole_word_masking else None
    return SpecialTokens(
        vocab_size, cls_id=101, sep_id=102, pad_id=0, mask_id=103, word_start=word_start
    )


def synthetic_records(num_docs: int, seed: int = 0, chunk: int = 1000):
    """Serialized documents of 5-60 sentences of about 24 tokens (3-80), random ids over the
    vocab (about 750 tokens, 2 KB each), encoded `chunk` documents at a time."""
    from bert_jax.data import shards

    rng = np.random.default_rng(seed)
    for first in range(0, num_docs, chunk):
        lengths, ids = [], []
        for _ in range(min(chunk, num_docs - first)):
            size = rng.integers(5, 61)
            lengths.append(np.clip(rng.lognormal(3.0, 0.5, size=size), 3, 80).astype(int))
            ids.append(rng.integers(1000, VOCAB_SIZE, size=int(lengths[-1].sum())))
        yield from shards.encode_documents(
            np.concatenate(ids),
            np.array([len(x) for x in ids]),
            np.concatenate(lengths),
            np.array([len(x) for x in lengths]),
        )


def write_synthetic_shards(directory: str, num_docs: int = 6000, num_shards: int = 16) -> None:
    """`synthetic_records` in the `prepare` shard layout (no metadata.json), documents
    round-robin over the shards, written as `prepare` writes. About 4.5M tokens."""
    from bert_jax import paths
    from bert_jax.data import shards, tfrecord

    documents = [[] for _ in range(num_shards)]
    for i, record in enumerate(synthetic_records(num_docs)):
        documents[i % num_shards].append(record)
    for i, records in enumerate(documents):
        tfrecord.write_file(
            paths.path(directory) / shards.shard_name("train", i, num_shards), records
        )
