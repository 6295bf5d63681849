"""`prepare`: tokenize a corpus into pretraining shards (format in `bert_jax.data.shards`).

Two steps, both resumable:
  1. Parts. The corpus is cut into parts of whole documents (`corpus_readers`), which a pool of
     worker processes tokenizes (`part_tokenizer`). Each part is saved under OUTPUT/.prepare as
     its records in key order plus an index (keys, sentence and token counts, byte offsets).
  2. Shards. All keys are ranked; the lowest-ranked documents are the eval split, the rest is cut
     into `num_shards` ranges of about equal token count. Each shard reads its records from every
     part (one contiguous byte range per part, since parts are in key order) and writes them in
     key order.
Every file is written under a temporary name and renamed when complete; `metadata.json` comes
last and marks the dataset complete; then OUTPUT/.prepare is deleted. OUTPUT, the inputs and the
vocab may be local or gs:// (`bert_jax.paths`); TensorFlow is not used, except by TFDS input.
An eval split is written only when it holds documents (see `shard_writer`). A re-run with the same
plan (inputs, tokenizer, seed, shard count, eval size) keeps every finished part and shard; a
different plan in a non-empty OUTPUT is refused, never overwritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

from bert_jax import __version__, paths
from bert_jax.data import corpus_readers, part_store, shards
from bert_jax.data.corpus_readers import CorpusSpec
from bert_jax.data.documents import sentence_splitter
from bert_jax.data.shard_writer import check_output, write_shards
from bert_jax.errors import UserError
from bert_jax.report_table import SummaryTable, duration

WORK_DIR = ".prepare"
SPM_PREFIX = "spm"


@dataclasses.dataclass(frozen=True)
class PrepareOptions:
    corpus: CorpusSpec
    output: str
    vocab: str | None = None  # vocab.txt (WordPiece) or *.model (SentencePiece)
    lowercase: bool | None = None  # None: the tokenizer's own default for that vocab
    train_sentencepiece: int | None = None  # train a SentencePiece vocab of this size first
    num_shards: int = 16
    eval_documents: int | None = None  # exactly this many held-out documents, or
    eval_fraction: float = 0.01  # each document held out with this probability
    seed: int = 0
    workers: int = 1
    tokenizer_threads: bool = False  # also a thread per core inside each worker's tokenizer
    part_bytes: int | None = None  # None: from the corpus size (`part_store.auto_part_bytes`)
    progress: bool | None = None  # bars on stderr; None: as `bert_jax.progress.wanted` says


def _validate(options: PrepareOptions) -> None:
    if (options.vocab is None) == (options.train_sentencepiece is None):
        raise UserError("give exactly one of --vocab=PATH and --train_sentencepiece=VOCAB_SIZE")
    if options.num_shards < 1:
        raise UserError(f"--num_shards={options.num_shards} must be at least 1")
    if options.workers < 1:
        raise UserError(f"--workers={options.workers} must be at least 1")
    if options.eval_documents is not None and options.eval_documents < 0:
        raise UserError(f"--eval_documents={options.eval_documents} must be >= 0")
    if not 0.0 <= options.eval_fraction < 1.0:
        raise UserError(f"--eval_fraction={options.eval_fraction} must be in [0, 1)")
    if options.train_sentencepiece is not None and options.train_sentencepiece < 8:
        raise UserError(f"--train_sentencepiece={options.train_sentencepiece} is too small")


def _plan(options: PrepareOptions, sources, tokenizer_fingerprint: str | None) -> dict:
    """Everything that decides the output's bytes; a re-run must match it to reuse any file."""
    spec = options.corpus
    corpus = {"format": spec.format, "sources": [[s.name, s.nbytes] for s in sources]}
    if spec.format != "lines":
        corpus["language"] = spec.language
    if spec.format in ("jsonl", "tfds"):
        corpus["text_field"] = spec.text_field
    if spec.format == "prose":
        corpus["prose_documents"] = spec.prose_documents
    if tokenizer_fingerprint is None:
        tokenizer = {"train_sentencepiece": options.train_sentencepiece}
        tokenizer["lowercase"] = options.lowercase
    else:
        tokenizer = {"fingerprint": tokenizer_fingerprint}  # covers the casing too
    eval_ = (
        {"documents": options.eval_documents}
        if options.eval_documents is not None
        else {"fraction": options.eval_fraction}
    )
    return {
        "format_version": shards.FORMAT_VERSION,
        "input": corpus,
        "tokenizer": tokenizer,
        "seed": options.seed,
        "num_shards": options.num_shards,
        "eval": eval_,
    }


def prepare(options: PrepareOptions) -> dict:
    """Make (or finish) the dataset in `options.output`; returns what `format_summary` shows.

    With `workers` > 1 the workers are spawned processes: a script calling this needs the usual
    `if __name__ == "__main__":` guard.
    """
    from bert_jax.text.load import load_tokenizer

    _validate(options)
    started = time.perf_counter()
    output = paths.check_accessible(options.output, writable=True)
    sources = corpus_readers.list_sources(options.corpus)
    tokenizer = None
    if options.vocab is not None:
        tokenizer = load_tokenizer(options.vocab, lowercase=options.lowercase)
    plan = _plan(options, sources, tokenizer and tokenizer.fingerprint)

    work = output / WORK_DIR
    existing = check_output(options.output, os.fspath(work), plan, tokenizer)
    if existing is not None:  # already complete with this very plan: touch nothing
        if work.exists():
            work.rmtree()
        return _summary(existing, time.perf_counter() - started, reused=True)
    work.mkdir(parents=True, exist_ok=True)
    paths.write_atomic(work / "plan.json", json.dumps(plan, indent=2, sort_keys=True))

    tokenizer_path = options.vocab
    if options.train_sentencepiece is not None:
        tokenizer_path = _sentencepiece_vocab(options, sources)
    if tokenizer is None:
        tokenizer = load_tokenizer(tokenizer_path, lowercase=options.lowercase)

    total_bytes = sum(s.nbytes for s in sources)
    part_bytes = options.part_bytes or part_store.auto_part_bytes(total_bytes)
    # No more processes than parts: each one loads the tokenizer before doing anything.
    workers = max(1, min(options.workers, -(-total_bytes // part_bytes)))
    part_store.tokenize_parts(
        options, sources, tokenizer.path, os.fspath(work), part_bytes, workers,
        options.tokenizer_threads,
    )  # fmt: skip
    parts = part_store.load_parts(os.fspath(work), part_bytes)
    splits, no_eval = write_shards(options, parts)
    metadata = _metadata(options, sources, tokenizer, plan, parts, splits, no_eval)
    shards.write_metadata(options.output, metadata)
    work.rmtree()
    metadata["directory"] = options.output
    return _summary(metadata, time.perf_counter() - started, reused=False)


def _metadata(options, sources, tokenizer, plan, parts, splits, no_eval) -> dict:
    def total(key: str) -> int:
        return sum(p.stats[key] for p in parts)

    return {
        "format_version": shards.FORMAT_VERSION,
        "tokenizer": {
            "kind": tokenizer.kind,
            "path": tokenizer.path,
            "fingerprint": tokenizer.fingerprint,
            "vocab_size": tokenizer.vocab_size,
            "lowercase": tokenizer.lowercase,
        },
        "splits": splits,
        # Whether an eval split was written; with none, "no_eval_reason" says why.
        "eval_split": "eval" in splits,
        **({"no_eval_reason": no_eval} if no_eval else {}),
        "input": {
            "format": options.corpus.format,
            "sources": [s.name for s in sources],
            "bytes": sum(s.nbytes for s in sources),
        },
        "seed": options.seed,
        "sentence_splitter": sentence_splitter(options.corpus),
        "invalid_utf8_replacements": total("invalid_utf8_replacements"),
        "dropped_empty_documents": total("dropped_empty_documents"),
        "single_sentence_documents": total("single_sentence_documents"),
        "plan": plan,
        "plan_fingerprint": _fingerprint(plan),
        "created_with": f"bert-jax {__version__}",
    }


def _fingerprint(plan: dict) -> str:
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# SentencePiece vocabulary

SENTENCEPIECE_SAMPLE_BYTES = 256 << 20  # text sampled to train on (the trainer samples again)


def _sentencepiece_vocab(options: PrepareOptions, sources) -> str:
    """OUTPUT/spm.model, trained on a seeded sample of the corpus's documents (kept on re-runs)."""
    import tempfile

    from bert_jax.data.documents import DocumentReader
    from bert_jax.data.part_tokenizer import document_key
    from bert_jax.text.load import train_sentencepiece

    model = paths.path(options.output) / (SPM_PREFIX + ".model")
    if model.exists():
        return os.fspath(model)
    total = max(1, sum(s.nbytes for s in sources))
    threshold = min(1.0, SENTENCEPIECE_SAMPLE_BYTES / total) * 2.0**64
    reader = DocumentReader(options.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        sample = os.path.join(tmp, "sentences.txt")
        sentences = 0
        with open(sample, "w", encoding="utf-8") as f:
            parts = corpus_readers.iter_parts(options.corpus, sources, part_store.MAX_PART_BYTES)
            for part in parts:
                for segment in part.segments:
                    for document in reader.documents(segment):
                        if document and document_key(options.seed + 1, document) < threshold:
                            f.writelines(s + "\n" for s in document)
                            sentences += len(document)
        if sentences == 0:
            inputs = ",".join(options.corpus.inputs)
            raise UserError(
                f"no sentences to train SentencePiece on in --input={inputs} "
                f"(format {options.corpus.format}): the corpus is empty"
            )
        lowercase = True if options.lowercase is None else options.lowercase
        trained = train_sentencepiece(
            [sample],
            os.path.join(tmp, SPM_PREFIX),
            options.train_sentencepiece,
            lowercase=lowercase,
            seed=options.seed,
        )
        for suffix in (".vocab", ".model"):  # .model last: its presence means both are there
            source = str(trained)[: -len(".model")] + suffix
            if os.path.exists(source):
                target = paths.path(options.output) / (SPM_PREFIX + suffix)
                with open(source, "rb") as f:
                    paths.write_atomic(target, f.read())
    return os.fspath(model)


# ---------------------------------------------------------------------------------------------
# Summary


def _summary(metadata: dict, seconds: float, reused: bool) -> dict:
    splits = metadata["splits"]
    nbytes = metadata["input"].get("bytes", 0)
    return {
        "output": metadata.get("directory"),
        "reused": reused,
        "documents": sum(s["documents"] for s in splits.values()),
        "sentences": sum(s["sentences"] for s in splits.values()),
        "tokens": sum(s["tokens"] for s in splits.values()),
        "train_documents": splits["train"]["documents"],
        "eval_documents": splits.get("eval", {}).get("documents", 0),
        "no_eval_reason": metadata.get("no_eval_reason"),
        "shards": len(splits["train"]["files"]),
        "single_sentence_documents": metadata["single_sentence_documents"],
        "dropped_empty_documents": metadata["dropped_empty_documents"],
        "invalid_utf8_replacements": metadata["invalid_utf8_replacements"],
        "input_mb": nbytes / 1e6,
        "seconds": seconds,
        "mb_per_s": nbytes / 1e6 / seconds if seconds > 0 else 0.0,
    }


def format_summary(summary: dict) -> str:
    s = summary
    held_out = f"{s['eval_documents']:,} eval"
    if s["no_eval_reason"] or not s["eval_documents"]:
        held_out = f"no eval split: {s['no_eval_reason'] or 'none was written'}"
    counts = (
        f"{s['output']}: {s['documents']:,} documents ({s['train_documents']:,} train, "
        f"{held_out}), {s['sentences']:,} sentences, {s['tokens']:,} tokens "
        f"in {s['shards']} shards"
    )
    if s["reused"]:
        return f"already complete, nothing to do: {counts}"
    return (
        f"{counts}; {s['seconds']:.1f} s, {s['mb_per_s']:.2f} MB/s of {s['input_mb']:.1f} MB "
        f"input; {s['single_sentence_documents']:,} single-sentence documents, "
        f"{s['dropped_empty_documents']:,} empty documents dropped, "
        f"{s['invalid_utf8_replacements']:,} invalid UTF-8 sequences replaced"
    )


def summary_table(summary: dict) -> SummaryTable:
    """The table `bert-jax prepare` ends with (from `prepare`'s summary)."""
    s = summary
    table = SummaryTable("prepare: summary")
    table.add("output", s["output"])
    if s["reused"]:
        table.add("status", "already complete with the same plan: nothing done")
    table.add("documents", s["documents"])
    eval_split = f"{s['eval_documents']:,} documents"
    if s["no_eval_reason"] or not s["eval_documents"]:
        eval_split = f"none ({s['no_eval_reason'] or 'none was written'})"
    table.add("train split", f"{s['train_documents']:,} documents in {s['shards']} shards")
    table.add("eval split", eval_split)
    table.add("sentences", s["sentences"])
    table.add("tokens", s["tokens"])
    if not s["reused"]:
        mb = s["input_mb"]
        table.add("input", f"{mb:,.1f} MB" if mb >= 0.1 else f"{1000 * mb:.1f} KB")
        table.add("time", f"{duration(s['seconds'])} ({s['mb_per_s']:.2f} MB/s)")
    return table
