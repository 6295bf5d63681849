"""The embedded default corpus: documents generated from a small English grammar, and the
WordPiece vocab that covers them.

It lets `bert-jax pretrain --config=configs/pretrain.py:quickstart` run end to end on a fresh
clone with no downloads. The grammar has agreement (a plural subject takes a plural verb),
topics that persist within a document (so NSP's "is next" is learnable) and fixed collocations
(so MLM accuracy visibly climbs within a few hundred steps).
"""

from __future__ import annotations

import os

import numpy as np

from bert_jax import paths

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# topic -> (singular nouns, plural nouns, adjectives, places)
TOPICS = {
    "sea": (
        ["sailor", "captain", "whale", "ship", "harbour", "gull"],
        ["sailors", "captains", "whales", "ships", "harbours", "gulls"],
        ["salty", "stormy", "grey", "restless", "distant"],
        ["on the deck", "near the shore", "across the bay", "under the waves"],
    ),
    "farm": (
        ["farmer", "horse", "cow", "barn", "field", "dog"],
        ["farmers", "horses", "cows", "barns", "fields", "dogs"],
        ["muddy", "green", "quiet", "golden", "old"],
        ["in the meadow", "by the river", "behind the barn", "along the lane"],
    ),
    "city": (
        ["clerk", "lawyer", "merchant", "street", "carriage", "banker"],
        ["clerks", "lawyers", "merchants", "streets", "carriages", "bankers"],
        ["busy", "crowded", "noisy", "wealthy", "narrow"],
        ["in the square", "at the bank", "near the station", "by the market"],
    ),
    "house": (
        ["mother", "sister", "servant", "letter", "garden", "visitor"],
        ["mothers", "sisters", "servants", "letters", "gardens", "visitors"],
        ["kind", "proud", "anxious", "cheerful", "elegant"],
        ["in the parlour", "at the door", "by the fire", "in the garden"],
    ),
}
VERBS = {  # singular form -> plural form
    "sees": "see",
    "follows": "follow",
    "admires": "admire",
    "watches": "watch",
    "fears": "fear",
    "remembers": "remember",
}
TIMES = ["in the morning", "at night", "every day", "before dinner", "after the rain"]
CONNECTIVES = ["then", "later", "meanwhile", "soon", "afterwards"]
FUNCTION_WORDS = ["the", "a", "and", ",", "."]


def _sentence(rng: np.random.Generator, topic: str) -> str:
    singular, plural, adjectives, places = TOPICS[topic]
    is_plural = rng.random() < 0.4
    subject = rng.choice(plural if is_plural else singular)
    verb = rng.choice(list(VERBS))
    verb = VERBS[verb] if is_plural else verb
    obj = rng.choice(singular + plural)
    words = ["the", str(rng.choice(adjectives)), str(subject), verb, "the", str(obj)]
    words.append(str(rng.choice(places)))
    if rng.random() < 0.5:
        words.append(str(rng.choice(TIMES)))
    if rng.random() < 0.3:
        words = [str(rng.choice(CONNECTIVES)), ","] + words
    return " ".join(words).capitalize() + " ."


def documents(num_documents: int, seed: int = 0) -> list[list[str]]:
    """`num_documents` documents of 4-12 sentences, each document about one topic."""
    rng = np.random.default_rng(seed)
    topics = list(TOPICS)
    return [
        [_sentence(rng, topics[rng.integers(len(topics))]) for _ in range(rng.integers(4, 13))]
        for _ in range(num_documents)
    ]


def vocabulary() -> list[str]:
    """Special tokens, then every lower-cased word the grammar can produce (sorted)."""
    words = set(FUNCTION_WORDS) | set(VERBS) | set(VERBS.values())
    for singular, plural, adjectives, places in TOPICS.values():
        words |= set(singular) | set(plural) | set(adjectives)
        words |= {w for phrase in places for w in phrase.split()}
    words |= {w for phrase in TIMES for w in phrase.split()} | set(CONNECTIVES)
    return SPECIAL_TOKENS + sorted(words)


def write(directory: paths.PathLike, num_documents: int = 2000, seed: int = 0) -> dict:
    """Write `corpus.txt` (BERT layout: a sentence per line, blank line between documents) and
    `vocab.txt` into `directory` (local or gs://); returns their paths."""
    directory = paths.path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    corpus = directory / "corpus.txt"
    vocab = directory / "vocab.txt"
    text = "\n\n".join("\n".join(doc) for doc in documents(num_documents, seed)) + "\n"
    paths.write_atomic(corpus, text)
    paths.write_atomic(vocab, "\n".join(vocabulary()) + "\n")
    return {"corpus": os.fspath(corpus), "vocab": os.fspath(vocab)}


def prepared_shards(directory: paths.PathLike, num_documents: int = 2000, seed: int = 0) -> str:
    """The demo corpus tokenized into shards under `directory` (local or gs://, by `bert-jax
    prepare`'s own code path); returns the shard directory. Re-running reuses the finished
    shards."""
    from bert_jax.data.corpus_readers import CorpusSpec
    from bert_jax.data.prepare import PrepareOptions, prepare

    directory = paths.path(directory)
    files = write(directory / "text", num_documents, seed)
    output = directory / "shards"
    prepare(
        PrepareOptions(
            corpus=CorpusSpec(format="lines", inputs=(files["corpus"],)),
            output=os.fspath(output),
            vocab=files["vocab"],
            lowercase=True,
            num_shards=4,
            eval_documents=max(1, num_documents // 20),
            seed=seed,
            progress=False,
        )
    )
    return os.fspath(output)
