"""The embedded fine-tuning task `docsource`: is a sentence from the language reference or from
a library docstring?

A binary sentence classification built from the same documentation as the demo corpus
(`bert_jax.data.demo_corpus`), so the quickstart's second command fine-tunes on real text with no
download: `bert-jax finetune --config=configs/glue.py:docsource`. The two kinds of text differ
in subject and register (the reference describes syntax and semantics: "the expression list is
evaluated ..."; docstrings describe calls: "Return the number of ..."), which a pretrained
encoder picks up from few examples.

Splits are made by document, so no topic or library file gives sentences to both train and dev:
each source's documents, in an order fixed by a seed, go to dev until it holds DEV_SHARE of that
source's sentences. A sentence is an example
when it has MIN_WORDS to MAX_WORDS words; a sentence found under both labels is left out, and
each sentence is used once (the first document holding it keeps it, train before dev). Each split
has as many sentences of each label, the larger label sampled down: the majority class is 50%.

Files, in GLUE's layout (`write`): DocSource/train.tsv and DocSource/dev.tsv, a header
`sentence<TAB>label` and one example per line, labels "docstring" or "reference".
"""

from __future__ import annotations

import functools
import os

import numpy as np

from bert_jax import paths
from bert_jax.data import demo_corpus, stdlib_docs

LABELS = (stdlib_docs.DOCSTRING, stdlib_docs.REFERENCE)
SPLITS = ("train", "dev")
DIR_NAME = "DocSource"
DEV_SHARE = 0.2
MIN_WORDS, MAX_WORDS = 5, 60
SEED = 0


def _usable(sentence: str) -> bool:
    # A tab or a stray line end would break the TSV row; both are rare in the documentation.
    words = len(sentence.split())
    return MIN_WORDS <= words <= MAX_WORDS and "\t" not in sentence and "\n" not in sentence


def _documents_by_split(seed: int) -> dict[str, list[demo_corpus.DemoDocument]]:
    """Whole documents of each label, in an order fixed by `seed`, for dev until they hold
    DEV_SHARE of the label's sentences; the rest for train."""
    rng = np.random.default_rng(seed)
    split = {name: [] for name in SPLITS}
    for label in LABELS:
        docs = sorted(
            (doc for doc in demo_corpus.demo_documents() if doc.source == label),
            key=lambda doc: doc.name,
        )
        wanted = DEV_SHARE * sum(len(doc.sentences) for doc in docs)
        held = 0
        for i in rng.permutation(len(docs)):
            name = "dev" if held < wanted else "train"
            held += len(docs[i].sentences) if name == "dev" else 0
            split[name].append(docs[i])
    return split


@functools.cache
def examples(seed: int = SEED) -> dict[str, tuple[tuple[str, str], ...]]:
    """Split -> (sentence, label) pairs, balanced and shuffled (see the module docstring)."""
    by_split = _documents_by_split(seed)
    labels_of: dict[str, set[str]] = {}
    for docs in by_split.values():
        for doc in docs:
            for sentence in doc.sentences:
                labels_of.setdefault(sentence, set()).add(doc.source)
    rng = np.random.default_rng(seed + 1)
    seen: set[str] = set()
    found = {}
    for name in SPLITS:
        per_label: dict[str, list[str]] = {label: [] for label in LABELS}
        for doc in by_split[name]:
            for sentence in doc.sentences:
                if sentence in seen or len(labels_of[sentence]) > 1 or not _usable(sentence):
                    continue
                seen.add(sentence)
                per_label[doc.source].append(sentence)
        size = min(len(sentences) for sentences in per_label.values())
        rows = []
        for label, sentences in per_label.items():
            keep = np.sort(rng.choice(len(sentences), size, replace=False))
            rows += [(sentences[i], label) for i in keep]
        found[name] = tuple(rows[i] for i in rng.permutation(len(rows)))
    return found


def tsv_text(split: str, seed: int = SEED) -> str:
    """The split's file content in GLUE's layout."""
    rows = [f"{sentence}\t{label}" for sentence, label in examples(seed)[split]]
    return "\n".join(["sentence\tlabel", *rows]) + "\n"


def write(directory: paths.PathLike, seed: int = SEED) -> str:
    """Write DocSource/train.tsv and DocSource/dev.tsv under `directory` (local or gs://), as
    GLUE's download lays out a task; returns `directory`, what data.data_dir takes."""
    task_dir = paths.path(directory) / DIR_NAME
    task_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        paths.write_atomic(task_dir / f"{split}.tsv", tsv_text(split, seed))
    return os.fspath(paths.path(directory))
