"""SQuAD examples -> model windows: `[CLS] question [SEP] context piece [SEP]`.

As Google's run_squad.py: the question is cut to `max_query_length` tokens; a context longer than
what is left of `max_length` becomes several windows, each starting `doc_stride` tokens after the
previous one (never truncated), and each context token is marked in the one window where it has
the most context on both sides (`_check_is_max_context`), which is where decoding takes it from.

Unlike run_squad.py, tokens keep character offsets into the original context (not whitespace
word indices), so an answer is always `context[offsets[s][0]:offsets[e][1]]`, the original text
exactly; the training target is found from the answer's character span the same way.

Each distinct context is tokenized once, and all contexts and all questions each in one batch
call, so the SQuAD dev set (10,570 questions over 2,067 contexts) takes seconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bert_jax.errors import UserError
from bert_jax.tasks.squad_data import SquadExample
from bert_jax.text.tokenizer import Tokenizer

NO_OFFSET = (-1, -1)  # [CLS], question tokens and [SEP]s


@dataclasses.dataclass
class Windows:
    """All windows of a list of examples (ragged rows; no padding)."""

    input_ids: list[np.ndarray]  # int32 [n]: [CLS] question [SEP] context piece [SEP]
    segment_ids: list[np.ndarray]  # int32 [n]: 0 for [CLS] question [SEP], 1 after
    offsets: list[np.ndarray]  # int32 [n, 2]: (start, end) character offsets of each token in
    #   its example's context (end exclusive); (-1, -1) for [CLS], question tokens and [SEP]s
    max_context: list[np.ndarray]  # bool [n]: the token's best window is this one (Google's
    #   _check_is_max_context); False outside the context
    example: np.ndarray  # int64 [W]: index into the examples list
    start_positions: np.ndarray  # int32 [W]: training target token (0 = [CLS]: no answer
    end_positions: np.ndarray  #   in this window, or impossible)

    def __len__(self) -> int:
        return len(self.input_ids)


def doc_spans(num_tokens: int, max_tokens: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) of each window's piece of a context of `num_tokens` tokens: as
    run_squad.py's `_DocSpan`s, each window starts `doc_stride` tokens after the one before and
    the last one ends at the context's end. An empty context gets one empty window."""
    spans = []
    start = 0
    while True:
        length = min(num_tokens - start, max_tokens)
        spans.append((start, length))
        if start + length >= num_tokens:
            return spans
        start += min(length, doc_stride)


def max_context_flags(spans: list[tuple[int, int]], num_tokens: int) -> list[np.ndarray]:
    """bool [length] per span: whether that span is the token's best (first of the best on ties),
    scoring a token in a span min(tokens left, tokens right) + 0.01 * span length."""
    if num_tokens == 0:
        return [np.zeros(0, bool) for _ in spans]
    position = np.arange(num_tokens)
    scores = np.full((len(spans), num_tokens), -np.inf)
    for k, (start, length) in enumerate(spans):
        inside = position[start : start + length]
        left, right = inside - start, start + length - 1 - inside
        scores[k, start : start + length] = np.minimum(left, right) + 0.01 * length
    best = np.argmax(scores, axis=0)  # the first maximum, as the strict > of run_squad.py
    return [best[start : start + length] == k for k, (start, length) in enumerate(spans)]


def answer_tokens(
    offsets: np.ndarray, answer_start: int, answer_end: int
) -> tuple[int, int] | None:
    """Context tokens (first, last) of the character span [answer_start, answer_end): the first
    token ending after its start and the last starting before its end; None if no token
    overlaps it (an answer of whitespace or of characters the tokenizer deletes)."""
    if len(offsets) == 0:
        return None
    first = int(np.searchsorted(offsets[:, 1], answer_start, side="right"))
    last = int(np.searchsorted(offsets[:, 0], answer_end, side="left")) - 1
    if first >= len(offsets) or last < first:
        return None
    return first, last


def make_windows(
    tokenizer: Tokenizer,
    examples: list[SquadExample],
    max_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
    *,
    training: bool,
) -> Windows:
    """Every window of every example, in example order. `training`: each window's target is the
    first answer's tokens when the window holds all of it, else [CLS] (0); otherwise the targets
    are 0."""
    if max_query_length < 0 or doc_stride < 1:
        raise UserError(
            f"max_query_length {max_query_length} and doc_stride {doc_stride} must be >= 0 and >= 1"
        )
    if max_length - max_query_length - 3 < 1:
        raise UserError(
            f"max_length {max_length} leaves no room for the context after a question of up to "
            f"{max_query_length} tokens and [CLS]/[SEP]/[SEP] (needs at least "
            f"{max_query_length + 4})"
        )
    context_index: dict[str, int] = {}
    for example in examples:
        context_index.setdefault(example.context, len(context_index))
    contexts = [
        (np.asarray(ids, np.int32), np.asarray(offsets, np.int32).reshape(-1, 2))
        for ids, offsets in tokenizer.encode_batch_with_offsets(list(context_index))
    ]
    questions = tokenizer.encode_batch([example.question for example in examples])

    # Spans and max-context flags depend only on the two lengths: shared by most questions.
    layouts: dict[tuple[int, int], tuple[list, list]] = {}
    cls = np.array([tokenizer.cls_id], np.int32)
    sep = np.array([tokenizer.sep_id], np.int32)
    input_ids, segment_ids, window_offsets, max_context = [], [], [], []
    window_example, starts, ends = [], [], []
    for index, (example, question) in enumerate(zip(examples, questions, strict=True)):
        context_ids, context_offsets = contexts[context_index[example.context]]
        question = np.asarray(question[:max_query_length], np.int32)
        head = len(question) + 2  # [CLS] question [SEP]
        key = (len(context_ids), max_length - len(question) - 3)
        if key not in layouts:
            spans = doc_spans(key[0], key[1], doc_stride)
            layouts[key] = spans, max_context_flags(spans, key[0])
        spans, flags = layouts[key]
        target = _target(example, context_offsets) if training else None
        for (start, length), flag in zip(spans, flags, strict=True):
            input_ids.append(
                np.concatenate([cls, question, sep, context_ids[start : start + length], sep])
            )
            segment = np.zeros(head + length + 1, np.int32)
            segment[head:] = 1
            segment_ids.append(segment)
            offsets = np.full((head + length + 1, 2), NO_OFFSET, np.int32)
            offsets[head : head + length] = context_offsets[start : start + length]
            window_offsets.append(offsets)
            best = np.zeros(head + length + 1, bool)
            best[head : head + length] = flag
            max_context.append(best)
            window_example.append(index)
            inside = target is not None and start <= target[0] and target[1] < start + length
            starts.append(target[0] - start + head if inside else 0)
            ends.append(target[1] - start + head if inside else 0)
    return Windows(
        input_ids=input_ids,
        segment_ids=segment_ids,
        offsets=window_offsets,
        max_context=max_context,
        example=np.array(window_example, np.int64),
        start_positions=np.array(starts, np.int32),
        end_positions=np.array(ends, np.int32),
    )


def _target(example: SquadExample, context_offsets: np.ndarray) -> tuple[int, int] | None:
    """Context tokens of the first answer; None for an impossible question (or no answer)."""
    if example.is_impossible or not example.answers:
        return None
    start = example.answer_starts[0]
    return answer_tokens(context_offsets, start, start + len(example.answers[0]))
