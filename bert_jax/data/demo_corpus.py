"""The embedded demo corpus: the standard library's documentation as pretraining text, with a
WordPiece vocab trained on it.

It lets `bert-jax pretrain --config=configs/pretrain.py:quickstart` run end to end on a fresh
clone with no downloads, on real English: the language reference and every docstring of the
library (`bert_jax.data.stdlib_docs`, about 1.7 MB for Python 3.11; the exact text depends on the
Python that runs it). A document is one reference topic or one library file's docstrings; its
paragraphs are cut into sentences by the splitter `bert-jax prepare` uses for prose.

Written under DIRECTORY (local or gs://):
  text/corpus.txt    BERT's layout: a sentence per line, a blank line between documents
  text/vocab.txt     uncased WordPiece, VOCAB_SIZE tokens, trained on corpus.txt
  text/about.json    what the two files were made from; written last, so a re-run that finds it
                     (with the same request) reuses them instead of reading the library again
  shards/            `bert-jax prepare`'s output for the two files
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from bert_jax import paths
from bert_jax.data import stdlib_docs

# Uncased WordPiece of this size: common words whole, the tiny model's softmax still cheap.
VOCAB_SIZE = 8192
EVAL_SHARE = 0.1  # documents held out for evaluation
NUM_SHARDS = 4
LANGUAGE = "en"

Log = Callable[[str], None]


def _quiet(text: str) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class DemoDocument:
    source: str  # stdlib_docs.REFERENCE or stdlib_docs.DOCSTRING
    name: str  # the reference topic or the library file
    sentences: tuple[str, ...]


@functools.cache
def _all_documents() -> tuple[DemoDocument, ...]:
    """Every documentation document of this Python, cut into sentences (read once a process:
    it is a pure function of the installation, and the fine-tuning task reads it too)."""
    from bert_jax.data.corpus_readers import CorpusSpec
    from bert_jax.data.documents import DocumentReader

    reader = DocumentReader(CorpusSpec(format="prose", inputs=("stdlib",), language=LANGUAGE))
    found = []
    for doc in stdlib_docs.documents():
        sentences = tuple(s for paragraph in doc.paragraphs for s in reader.split(paragraph))
        if sentences:
            found.append(DemoDocument(doc.source, doc.name, sentences))
    return tuple(found)


def demo_documents(num_documents: int | None = None, seed: int = 0) -> list[DemoDocument]:
    """The documents in an order fixed by `seed` (so the first `num_documents` mix both
    sources); all of them when `num_documents` is None."""
    found = _all_documents()
    order = np.random.default_rng(seed).permutation(len(found))
    return [found[i] for i in order[:num_documents]]


def documents(num_documents: int | None = None, seed: int = 0) -> list[list[str]]:
    """Each document as its list of sentences (see `demo_documents`)."""
    return [list(doc.sentences) for doc in demo_documents(num_documents, seed)]


def _about(num_documents: int | None, seed: int, vocab_size: int) -> dict:
    """What decides the two text files' content."""
    return {
        "python": platform.python_version(),
        "stdlib": stdlib_docs.stdlib_dir(),
        "num_documents": num_documents,
        "seed": seed,
        "vocab_size": vocab_size,
    }


def write(
    directory: paths.PathLike,
    num_documents: int | None = None,
    seed: int = 0,
    vocab_size: int = VOCAB_SIZE,
    log: Log = _quiet,
) -> dict:
    """Write `corpus.txt`, `vocab.txt` and `about.json` into `directory` (local or gs://), or
    keep them when `about.json` says they were made by the same request; returns their paths.
    `log` gets one line per step, with its time."""
    return _write(directory, num_documents, seed, vocab_size, log)[0]


def _write(directory, num_documents, seed, vocab_size, log) -> tuple[dict, dict]:
    """`write`'s paths and the content of `about.json` (with the counts of what was written)."""
    from bert_jax.data.wordpiece_vocab import train_wordpiece

    directory = paths.path(directory)
    corpus, vocab, about = (directory / name for name in ("corpus.txt", "vocab.txt", "about.json"))
    files = {"corpus": os.fspath(corpus), "vocab": os.fspath(vocab)}
    wanted = _about(num_documents, seed, vocab_size)
    if about.exists() and corpus.exists() and vocab.exists():
        made = json.loads(about.read_text())
        if {key: made.get(key) for key in wanted} == wanted:
            log(f"demo corpus: reusing {corpus} and {vocab.name}")
            return files, made
    started = time.perf_counter()
    docs = documents(num_documents, seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths.write_atomic(corpus, "\n\n".join("\n".join(doc) for doc in docs) + "\n")
    counts = {
        "documents": len(docs),
        "sentences": sum(len(doc) for doc in docs),
        "corpus_bytes": corpus.stat().length,
    }
    log(
        f"demo corpus: {counts['documents']:,} documents, {counts['sentences']:,} sentences "
        f"({counts['corpus_bytes'] / 1e6:.1f} MB) of Python {wanted['python']}'s documentation "
        f"-> {corpus} ({time.perf_counter() - started:.0f} s)"
    )
    started = time.perf_counter()
    tokens = train_wordpiece((s for doc in docs for s in doc), vocab_size, lowercase=True)
    paths.write_atomic(vocab, "\n".join(tokens) + "\n")
    log(
        f"demo vocab: {len(tokens):,} uncased WordPiece tokens trained on it -> {vocab} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    made = {**wanted, **counts, "vocab_tokens": len(tokens)}
    paths.write_atomic(about, json.dumps(made, indent=2) + "\n")
    return files, made


def prepared_shards(
    directory: paths.PathLike,
    num_documents: int | None = None,
    seed: int = 0,
    vocab_size: int = VOCAB_SIZE,
    log: Log = _quiet,
) -> str:
    """The demo corpus tokenized into shards under `directory` (local or gs://, by `bert-jax
    prepare`'s own code path); returns the shard directory. Re-running reuses the finished
    text files and shards. `log` gets one line per step."""
    from bert_jax.data.corpus_readers import CorpusSpec
    from bert_jax.data.prepare import PrepareOptions, prepare

    directory = paths.path(directory)
    # The count from about.json: a re-run that reuses the text files reads no documentation.
    files, made = _write(directory / "text", num_documents, seed, vocab_size, log)
    output = directory / "shards"
    summary = prepare(
        PrepareOptions(
            corpus=CorpusSpec(format="lines", inputs=(files["corpus"],)),
            output=os.fspath(output),
            vocab=files["vocab"],
            lowercase=True,
            num_shards=NUM_SHARDS,
            eval_documents=max(1, round(EVAL_SHARE * made["documents"])),
            seed=seed,
            progress=None,
        )
    )
    if summary["reused"]:
        log(f"demo shards: reusing {output}")
    else:
        log(
            f"demo shards: {summary['train_documents']:,} train and {summary['eval_documents']:,}"
            f" held-out documents, {summary['tokens']:,} tokens -> {output} "
            f"({summary['seconds']:.0f} s)"
        )
    return os.fspath(output)


def finetune_command(workdir: str) -> str:
    """The `bert-jax finetune` command that fine-tunes the quickstart run in `workdir` on the
    embedded task (`bert_jax.data.doc_source`), its own workdir beside it."""
    workdir = workdir.rstrip("/")
    return (
        "bert-jax finetune --config=configs/glue.py:docsource "
        f"--workdir={workdir}-finetune --config.init_from={workdir}"
    )


def next_step(workdir: str) -> str:
    """What the quickstart's pretraining prints at its end: the command to run next."""
    return (
        "next: fine-tune this checkpoint to tell the language reference's sentences from "
        "docstrings':\n  " + finetune_command(workdir)
    )
