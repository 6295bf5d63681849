"""SQuAD post-processing: every window's start/end logits -> each question's n-best answers.

The rules are those of the original BERT `run_squad.py` (`write_predictions`):
  - per window, the `n_best` highest start logits and the `n_best` highest end logits (over the
    window's own positions: [CLS], question, context, [SEP]s; ties go to the earlier position);
  - every (start, end) pair of them is a candidate when both ends are context tokens, the start
    token has its maximum context in this window, end >= start and the span is at most
    `max_answer_length` tokens; its score is start logit + end logit;
  - the candidates of all windows of a question are sorted by score (ties keep window, start
    rank, end rank order) and taken while their texts are new, up to `n_best` distinct texts;
  - probabilities are the softmax of the kept scores;
  - v2.0: the null score is the smallest [CLS] start + [CLS] end over the question's windows; it
    takes part in the n-best as "" (and is appended when it did not make it), and the answer is
    "" when null score - best non-null score > `null_threshold`.
When no span is valid the n-best is run_squad's placeholder "empty" (logits 0); for v2.0, where
run_squad fails in that case, "empty" goes first as Hugging Face's `run_qa` puts it.

A text is always context[offsets[start][0]:offsets[end][1]], the original context characters,
without surrounding whitespace. WordPiece offsets never begin or end on whitespace (the SQuAD
v1.1 dev set's 1.76 M context tokens, checked), but a SentencePiece "▁" piece that stands alone
keeps the whitespace it was read from: a span starting or ending on one would carry it, and a
span of only such pieces has no text at all and is no candidate (it must not pass for the null
answer "").

The per-pair work is numpy over all windows at once: top-k positions per window, a [W, k, k]
grid of pairs with validity masks, one sort grouping candidates by question and score. Python
only walks the first few sorted candidates of each question to cut texts and build the lists.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from bert_jax import paths

if TYPE_CHECKING:
    from bert_jax.tasks.squad_data import SquadExample
    from bert_jax.tasks.squad_windows import Windows

PREDICTIONS_FILE = "predictions.json"  # qid -> answer text (both official scripts' input)
NBEST_FILE = "nbest.json"  # qid -> [{"text", "probability", "start_logit", "end_logit"}]
NULL_ODDS_FILE = "null_odds.json"  # v2.0: qid -> null score - best non-null score (--na-prob-file)

PLACEHOLDER = "empty"  # run_squad's answer when a question has no valid span


@dataclasses.dataclass(frozen=True)
class SquadPredictions:
    """Decoded answers of a list of examples, keyed by question id in the examples' order."""

    answers: dict[str, str]  # the answer text; v2.0: "" when the null answer wins
    nbest: dict[str, list[dict]]  # {"text", "probability", "start_logit", "end_logit"}, best first
    null_odds: dict[str, float] | None = None  # v2.0: null score - best non-null score
    best_non_null: dict[str, str] | None = None  # v2.0: the best non-null text

    def answers_at_threshold(self, threshold: float) -> dict[str, str]:
        """v2.0 answers for another null threshold: "" where null odds > threshold."""
        if self.null_odds is None or self.best_non_null is None:
            raise ValueError("answers_at_threshold needs v2.0 predictions (null odds)")
        return {
            qid: "" if self.null_odds[qid] > threshold else text
            for qid, text in self.best_non_null.items()
        }


@dataclasses.dataclass(frozen=True)
class _Candidates:
    """Valid spans of all windows, sorted by question, then score (highest first), then
    run_squad's insertion order (window, start rank, end rank)."""

    question: np.ndarray  # int64 [C]
    rows: np.ndarray  # float64 [C, 5]: score, start logit, end logit, char start, char end


def decode(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    windows: Windows,
    examples: Sequence[SquadExample],
    *,
    version_2: bool = False,
    n_best: int = 20,
    max_answer_length: int = 30,
    null_threshold: float = 0.0,
) -> SquadPredictions:
    """Answers of every example from float32 logits [W, L] of all its windows (L at least the
    longest window; positions past a window's length are ignored)."""
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    lengths = np.array([len(o) for o in windows.offsets], np.int64)
    _check_inputs(start_logits, end_logits, lengths, windows.example, examples)
    if n_best < 1 or max_answer_length < 1:
        raise ValueError(f"n_best {n_best} and max_answer_length {max_answer_length} must be >= 1")
    if not examples:
        empty = {} if version_2 else None
        return SquadPredictions({}, {}, empty, empty)
    example = np.asarray(windows.example, np.int64)
    candidates = _candidates(
        start_logits, end_logits, lengths, windows, example, n_best, max_answer_length
    )
    null = _null_scores(start_logits, end_logits, example, len(examples)) if version_2 else None
    return _assemble(candidates, null, examples, n_best, null_threshold)


def _check_inputs(start_logits, end_logits, lengths, example, examples) -> None:
    num_windows = len(lengths)
    if start_logits.ndim != 2 or start_logits.shape != end_logits.shape:
        raise ValueError(
            f"start logits {start_logits.shape} and end logits {end_logits.shape} must both be "
            "[windows, positions]"
        )
    if start_logits.shape[0] != num_windows or len(example) != num_windows:
        raise ValueError(
            f"{start_logits.shape[0]} rows of logits and {len(example)} window examples for "
            f"{num_windows} windows"
        )
    if num_windows and start_logits.shape[1] < lengths.max():
        raise ValueError(
            f"logits have {start_logits.shape[1]} positions; the longest window has "
            f"{lengths.max()} tokens"
        )
    if np.isnan(start_logits).any() or np.isnan(end_logits).any():
        raise ValueError("start or end logits hold NaN")
    windows_per_example = np.bincount(np.asarray(example, np.int64), minlength=len(examples))
    if len(windows_per_example) > len(examples):
        raise ValueError(f"windows name example {len(windows_per_example) - 1} of {len(examples)}")
    if (windows_per_example == 0).any():
        missing = int(np.argmin(windows_per_example))
        raise ValueError(f"example {missing} ({examples[missing].qid}) has no windows")


def _top_positions(logits_WxL: np.ndarray, lengths: np.ndarray, k: int) -> np.ndarray:
    """[W, k] positions of each window's k highest logits, highest first, ties to the earlier
    position (as run_squad's stable sort); past a window's length logits count as -inf, so a
    window shorter than k also names some positions past its end (the caller drops them)."""
    num_windows, length = logits_WxL.shape
    k = min(k, length)
    inside = np.arange(length)[None, :] < lengths[:, None]
    x = np.where(inside, logits_WxL, -np.inf)
    kth = np.partition(x, length - k, axis=1)[:, length - k, None]
    above = x > kth
    # Of the positions tied with the k-th value, the earliest ones fill the remaining places.
    tied = x == kth
    places = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= places))
    positions = np.nonzero(chosen)[1].reshape(num_windows, k)
    values = np.take_along_axis(x, positions, axis=1)
    order = np.lexsort((positions, -values), axis=-1)
    return np.take_along_axis(positions, order, axis=1)


def _candidates(
    start_logits, end_logits, lengths, windows, example, n_best, max_answer_length
) -> _Candidates:
    row_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    offsets = np.concatenate([np.asarray(o).reshape(-1, 2) for o in windows.offsets])
    max_context = np.concatenate([np.asarray(m, bool) for m in windows.max_context])
    in_context = offsets[:, 0] >= 0

    def gather(logits, positions):
        """Flat token index (0 where past the window's end), in-window flag and logit (float64,
        the precision run_squad scores in) of each chosen position."""
        inside = positions < lengths[:, None]
        flat = np.where(inside, row_start[:, None] + positions, 0)
        return flat, inside, np.take_along_axis(logits, positions, axis=1).astype(np.float64)

    starts_WxK = _top_positions(start_logits, lengths, n_best)
    ends_WxK = _top_positions(end_logits, lengths, n_best)
    start_flat, start_inside, start_logit = gather(start_logits, starts_WxK)
    end_flat, end_inside, end_logit = gather(end_logits, ends_WxK)
    start_ok = start_inside & in_context[start_flat] & max_context[start_flat]
    end_ok = end_inside & in_context[end_flat]
    span = ends_WxK[:, None, :] - starts_WxK[:, :, None]  # end - start, [W, k, k]
    valid = start_ok[:, :, None] & end_ok[:, None, :] & (span >= 0) & (span < max_answer_length)
    # Row-major order is run_squad's insertion order: window, start rank, end rank.
    w, i, j = np.nonzero(valid)
    k = starts_WxK.shape[1]
    start_at, end_at = w * k + i, w * k + j  # into the flattened [W, k] arrays
    start_logit, end_logit = start_logit.ravel()[start_at], end_logit.ravel()[end_at]
    score = start_logit + end_logit
    question = example[w]
    order = np.lexsort((-score, question))  # stable: ties keep insertion order
    rows = np.stack(
        [
            score,
            start_logit,
            end_logit,
            offsets[start_flat.ravel()[start_at], 0],
            offsets[end_flat.ravel()[end_at], 1],
        ],
        axis=1,
    )
    return _Candidates(question=question[order], rows=rows[order])


def _null_scores(start_logits, end_logits, example, num_examples) -> np.ndarray:
    """[Q, 2] [CLS] start and end logits (float64) of each question's window with the smallest
    null score (the first such window on ties, as run_squad's strict `<`)."""
    null = start_logits[:, 0].astype(np.float64) + end_logits[:, 0].astype(np.float64)
    order = np.lexsort((np.arange(len(example)), null, example))
    first = np.ones(len(order), bool)
    first[1:] = example[order][1:] != example[order][:-1]
    best_window = np.empty(num_examples, np.int64)
    best_window[example[order][first]] = order[first]
    return np.stack([start_logits[best_window, 0], end_logits[best_window, 0]], axis=1).astype(
        np.float64
    )


def _assemble(candidates, null, examples, n_best, null_threshold) -> SquadPredictions:
    bounds = np.searchsorted(candidates.question, np.arange(len(examples) + 1)).tolist()
    answers, nbest = {}, {}
    null_odds = {} if null is not None else None
    best_non_null = {} if null is not None else None
    # A question rarely reads more than n_best candidates (only repeated texts are skipped), so
    # it converts that many rows to Python first and the rest only when it needs them.
    first_rows = n_best + 8
    for q, ex in enumerate(examples):
        lo, hi = bounds[q], bounds[q + 1]
        null_logits = (float(null[q, 0]), float(null[q, 1])) if null is not None else None
        null_score = sum(null_logits) if null_logits else None
        entries: list[tuple[str, float, float]] = []
        seen: set[str] = set()
        for score, start, end, char_start, char_end in _rows(candidates.rows, lo, hi, first_rows):
            # The null answer goes where run_squad's stable sort puts it: after every span
            # scoring at least as much. (Past n_best it is appended below all the same.)
            if null_score is not None and "" not in seen and score < null_score:
                seen.add("")
                entries.append(("", *null_logits))
            if len(entries) >= n_best:
                break
            text = ex.context[int(char_start) : int(char_end)].strip()
            if text and text not in seen:
                seen.add(text)
                entries.append((text, start, end))
        if null_logits is not None and "" not in seen:
            entries.append(("", *null_logits))
        if not any(text for text, _, _ in entries):
            entries.insert(0, (PLACEHOLDER, 0.0, 0.0))
        nbest[ex.qid] = _nbest_json(entries)
        if null_logits is None:
            answers[ex.qid] = entries[0][0]
        else:
            best = next(e for e in entries if e[0])
            diff = null_score - best[1] - best[2]
            null_odds[ex.qid] = diff
            best_non_null[ex.qid] = best[0]
            answers[ex.qid] = "" if diff > null_threshold else best[0]
    return SquadPredictions(answers, nbest, null_odds, best_non_null)


def _rows(rows: np.ndarray, lo: int, hi: int, first: int) -> Iterator[list[float]]:
    """Rows lo..hi-1 as Python lists, the first `first` of them converted up front."""
    yield from rows[lo : min(hi, lo + first)].tolist()
    if hi > lo + first:
        yield from rows[lo + first : hi].tolist()


def _nbest_json(entries: list[tuple[str, float, float]]) -> list[dict]:
    """The n-best entries with run_squad's softmax of their scores."""
    totals = [start + end for _, start, end in entries]
    top = max(totals)
    exps = [math.exp(t - top) for t in totals]
    total = sum(exps)
    return [
        {"text": text, "probability": x / total, "start_logit": start, "end_logit": end}
        for (text, start, end), x in zip(entries, exps, strict=True)
    ]


def write_prediction_files(
    predictions: SquadPredictions, directory: paths.PathLike
) -> list[paths.Path]:
    """predictions.json, nbest.json and (v2.0) null_odds.json in `directory` (local or gs://):
    the JSON objects run_squad writes, which the official evaluation scripts read."""
    directory = paths.path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    contents = {PREDICTIONS_FILE: predictions.answers, NBEST_FILE: predictions.nbest}
    if predictions.null_odds is not None:
        contents[NULL_ODDS_FILE] = predictions.null_odds
    written = []
    for name, content in contents.items():
        path = directory / name
        path.write_text(_json_object_by_line(content))
        written.append(path)
    return written


def _json_object_by_line(content: dict) -> str:
    """A JSON object with one key per line: readable and diffable, and written by json's C
    encoder (an `indent` would take its pure-Python one, seconds for the full nbest.json)."""
    lines = [f"{json.dumps(key)}: {json.dumps(value)}" for key, value in content.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n" if lines else "{}\n"
