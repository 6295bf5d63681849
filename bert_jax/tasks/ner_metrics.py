"""Entity-level precision, recall and F1 exactly as CoNLL's `conlleval` computes them.

An entity (chunk) is a run of tags of one type. Following conlleval's `startOfChunk`, a chunk
starts at a `B-` tag, at an `I-` tag after `O` (or at a sentence start), and at any tag whose type
differs from the previous tag's; it continues over `I-` tags of its type. So one set of rules reads
IOB1 (`B-` only between two chunks of one type) and IOB2 (`B-` at every chunk start) alike, and a
type change inside a chunk (`I-PER I-LOC`) starts a new chunk. A predicted chunk is correct when a
gold chunk has the same first token, last token and type. Precision = correct / predicted chunks,
recall = correct / gold chunks, F1 = 2PR / (P + R), each 0 where its denominator is 0; accuracy is
conlleval's token accuracy (tags equal as strings). Results are fractions, not percent.

Everything runs on flat arrays of all the sentences' tags: a whole CoNLL test set in milliseconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from bert_jax.errors import UserError

SCHEMES = ("iob1", "iob2")
_OUTSIDE, _BEGIN, _INSIDE = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class Tagged:
    """The tags of many sentences as flat arrays."""

    prefix: np.ndarray  # int8 [N]: _OUTSIDE, _BEGIN or _INSIDE
    type: np.ndarray  # int64 [N]: index into `types`; -1 for O
    sentence_start: np.ndarray  # bool [N]: first token of a sentence
    types: tuple[str, ...]


def parse(sentences: Sequence[Sequence[str]], types: Sequence[str] = ()) -> Tagged:
    """Flat prefix and type arrays of `sentences`' tags; `types` fixes the first type indices
    (so two taggings of the same text share one type table)."""
    lengths = np.fromiter((len(tags) for tags in sentences), np.int64, len(sentences))
    flat = [tag for tags in sentences for tag in tags]
    unique, inverse = np.unique(np.array(flat, dtype=str), return_inverse=True)
    table = list(types)
    prefixes = np.zeros(len(unique), np.int8)
    type_ids = np.full(len(unique), -1, np.int64)
    for i, tag in enumerate(unique):
        prefix, kind = split_tag(str(tag))
        prefixes[i] = prefix
        if kind:
            if kind not in table:
                table.append(kind)
            type_ids[i] = table.index(kind)
    starts = np.zeros(len(flat), bool)
    starts[np.cumsum(lengths)[:-1][lengths[1:] > 0] if len(lengths) else []] = True
    if len(flat):
        starts[0] = True
    return Tagged(
        prefix=prefixes[inverse].reshape(-1),
        type=type_ids[inverse].reshape(-1),
        sentence_start=starts,
        types=tuple(table),
    )


def split_tag(tag: str) -> tuple[int, str]:
    """(prefix code, type) of one tag: "O", "B-TYPE" or "I-TYPE"."""
    if tag == "O":
        return _OUTSIDE, ""
    head, dash, kind = tag.partition("-")
    if dash and kind and head in ("B", "I"):
        return (_BEGIN if head == "B" else _INSIDE), kind
    raise UserError(f"tag {tag!r} is not O, B-TYPE or I-TYPE")


def _previous(tagged: Tagged) -> tuple[np.ndarray, np.ndarray]:
    """(inside, type) of each token's predecessor in its sentence (outside, -1 at a start)."""
    prev_type = np.roll(tagged.type, 1)
    prev_type[tagged.sentence_start] = -1
    return prev_type >= 0, prev_type


def chunk_bounds(tagged: Tagged) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) flat positions of every chunk, end exclusive, in order."""
    inside = tagged.prefix != _OUTSIDE
    _, prev_type = _previous(tagged)
    start = inside & ((tagged.prefix == _BEGIN) | (prev_type != tagged.type))
    continued = np.zeros(len(inside), bool)  # the next token continues this token's chunk
    continued[:-1] = inside[1:] & ~start[1:]
    return np.flatnonzero(start), np.flatnonzero(inside & ~continued) + 1


def _chunk_keys(tagged: Tagged) -> np.ndarray:
    """One int64 per chunk encoding (start, end, type)."""
    starts, ends = chunk_bounds(tagged)
    width, kinds = len(tagged.prefix) + 1, max(len(tagged.types), 1)
    return (starts * width + ends) * kinds + tagged.type[starts]


def entities(sentences: Sequence[Sequence[str]]) -> list[tuple[int, int, int, str]]:
    """(sentence, start, end exclusive, type) of every chunk, positions within the sentence."""
    tagged = parse(sentences)
    starts, ends = chunk_bounds(tagged)
    first = np.flatnonzero(tagged.sentence_start)
    sentence_of = np.searchsorted(first, starts, side="right") - 1
    index = np.array([i for i, tags in enumerate(sentences) if len(tags)], np.int64)
    return [
        (int(index[s]), int(a - first[s]), int(b - first[s]), tagged.types[tagged.type[a]])
        for s, a, b in zip(sentence_of, starts, ends, strict=True)
    ]


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def _prf(correct: int, predicted: int, gold: int) -> tuple[float, float, float]:
    precision, recall = _ratio(correct, predicted), _ratio(correct, gold)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return precision, recall, f1


def score(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """conlleval's overall precision, recall, F1 and token accuracy, and per entity type
    `TYPE/precision`, `TYPE/recall`, `TYPE/f1` (types of the gold or predicted chunks)."""
    if len(gold) != len(predicted):
        raise UserError(f"{len(predicted)} predicted sentences for {len(gold)} gold sentences")
    for i, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        if len(g) != len(p):
            raise UserError(f"sentence {i}: {len(p)} predicted tags for {len(g)} words")
    pred_tagged = parse(predicted, parse(gold).types)
    types = pred_tagged.types  # the gold types first, then any only predicted
    gold_tagged = parse(gold, types)
    gold_keys, pred_keys = _chunk_keys(gold_tagged), _chunk_keys(pred_tagged)
    correct = np.intersect1d(gold_keys, pred_keys, assume_unique=True)
    kinds = max(len(types), 1)
    flat_gold = [t for tags in gold for t in tags]
    flat_pred = [t for tags in predicted for t in tags]
    equal = sum(g == p for g, p in zip(flat_gold, flat_pred, strict=True))
    precision, recall, f1 = _prf(len(correct), len(pred_keys), len(gold_keys))
    out = {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": _ratio(equal, len(flat_gold)),
    }
    counts = [
        np.bincount(keys % kinds, minlength=kinds) for keys in (correct, pred_keys, gold_keys)
    ]
    for t in sorted(range(len(types)), key=lambda i: types[i]):
        p, r, f = _prf(counts[0][t], counts[1][t], counts[2][t])
        out.update({f"{types[t]}/precision": p, f"{types[t]}/recall": r, f"{types[t]}/f1": f})
    return out


def to_scheme(sentences: Sequence[Sequence[str]], scheme: str) -> list[list[str]]:
    """The same chunks written in `scheme`: "iob2" begins every chunk with B-; "iob1" only a
    chunk that directly follows a chunk of its type (CoNLL-2003's original files)."""
    if scheme not in SCHEMES:
        raise UserError(f"tag scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
    tagged = parse(sentences)
    starts, _ = chunk_bounds(tagged)
    begin = np.zeros(len(tagged.prefix), bool)
    begin[starts] = True
    if scheme == "iob1":
        prev_inside, prev_type = _previous(tagged)
        begin &= prev_inside & (prev_type == tagged.type)
    names = np.array(["O", *(f"B-{t}" for t in tagged.types), *(f"I-{t}" for t in tagged.types)])
    kinds = len(tagged.types)
    code = np.where(tagged.type < 0, 0, 1 + tagged.type + np.where(begin, 0, kinds))
    flat = names[code].tolist()
    out, at = [], 0
    for tags in sentences:
        out.append(flat[at : at + len(tags)])
        at += len(tags)
    return out
