"""Sentence (pair) examples -> BERT inputs: `[CLS] a [SEP] (b [SEP])` token ids and segment ids,
one ragged row per example, cut to `max_length` by BERT's pair truncation. No padding here:
batching pads to whatever shape the batch needs.

All texts are tokenized by one `encode_batch` call per side (parallel in the tokenizer), so a
whole GLUE training set takes seconds; the ids equal `tokenizer.encode_example(a, b, max_length)`
row for row.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bert_jax.errors import UserError
from bert_jax.tasks.glue_readers import Example
from bert_jax.text.tokenizer import Tokenizer, truncated_lengths


@dataclasses.dataclass
class Features:
    """One row per example, ragged."""

    input_ids: list[np.ndarray]  # int32, [CLS] a [SEP] (b [SEP])
    segment_ids: list[np.ndarray]  # int32, 0 up to the first [SEP], 1 after
    labels: np.ndarray  # int32 label index (-1 unlabeled) or float32 score (nan unlabeled)
    indices: np.ndarray  # int64, Example.index
    truncated: int  # how many examples were cut to max_length

    def __len__(self) -> int:
        return len(self.input_ids)


def encode_pairs(
    tokenizer: Tokenizer, examples: list[Example], max_length: int, regression: bool
) -> Features:
    """Token and segment ids of every example, with labels as arrays (see `Features`)."""
    has_pairs = any(example.text_b is not None for example in examples)
    if max_length < (3 if has_pairs else 2):
        raise UserError(
            f"max_length {max_length} is too small: [CLS] and [SEP] need "
            f"{3 if has_pairs else 2} positions"
        )
    ids_a = tokenizer.encode_batch([example.text_a for example in examples])
    pair_rows = [i for i, example in enumerate(examples) if example.text_b is not None]
    ids_b: list[list[int] | None] = [None] * len(examples)
    encoded_b = tokenizer.encode_batch([examples[i].text_b for i in pair_rows])
    for i, ids in zip(pair_rows, encoded_b, strict=True):
        ids_b[i] = ids

    cls, sep = tokenizer.cls_id, tokenizer.sep_id
    input_ids: list[np.ndarray] = []
    segment_ids: list[np.ndarray] = []
    truncated = 0
    for a, b in zip(ids_a, ids_b, strict=True):
        len_b = 0 if b is None else len(b)
        budget = max_length - (2 if b is None else 3)
        keep_a, keep_b = truncated_lengths(len(a), len_b, budget)
        truncated += (keep_a, keep_b) != (len(a), len_b)
        row = [cls, *a[:keep_a], sep]
        first_segment = len(row)
        if b is not None:
            row += [*b[:keep_b], sep]
        input_ids.append(np.asarray(row, dtype=np.int32))
        segments = np.zeros(len(row), dtype=np.int32)
        segments[first_segment:] = 1
        segment_ids.append(segments)

    return Features(
        input_ids=input_ids,
        segment_ids=segment_ids,
        labels=_labels(examples, regression),
        indices=np.asarray([example.index for example in examples], dtype=np.int64),
        truncated=truncated,
    )


def _labels(examples: list[Example], regression: bool) -> np.ndarray:
    if regression:
        values = [np.nan if e.label is None else float(e.label) for e in examples]
        return np.asarray(values, dtype=np.float32)
    return np.asarray([-1 if e.label is None else int(e.label) for e in examples], dtype=np.int32)
