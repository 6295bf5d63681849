"""Padded batches of tokenized sentence (pair) examples, for any task with one label or score
per example.

Training: each epoch is a permutation of the examples drawn from (seed, epoch), cut into global
batches of `batch_size`; the last batch of an epoch is filled with weight-0 rows (no example is
dropped, and a padding row adds nothing to the loss or its normaliser). The stream's position
is (epoch, batch), so a resumed run continues with exactly the batches it would have seen.

Evaluation: the examples sorted by length, cut into batches, the last one filled with weight-0
rows; every row carries its position in the split, so metrics do not depend on the batch size,
the device count or the process count.

Each batch is padded to its longest row rounded up to `pad_multiple` tokens: a few shapes (one
compilation each) instead of always the maximum length. Every process builds the same global
batch and keeps the rows of its batch shards (`feed.rows`).
"""

from __future__ import annotations

import math

import numpy as np

from bert_jax.tasks.text_features import Features


def padded_length(lengths: np.ndarray, multiple: int, max_length: int) -> int:
    longest = int(lengths.max()) if len(lengths) else 1
    return min(max_length, multiple * math.ceil(longest / multiple)) if multiple else longest


def make_batch(features: Features, rows: np.ndarray, size: int, multiple: int, max_length: int):
    """The global batch of `features` rows `rows` (fewer than `size`: filled with weight-0
    rows), padded to a multiple of `multiple` tokens."""
    lengths = np.array([len(features.input_ids[r]) for r in rows], np.int64)
    length = padded_length(lengths, multiple, max_length)
    input_ids = np.zeros((size, length), np.int32)
    segment_ids = np.zeros((size, length), np.int32)
    input_mask = np.zeros((size, length), np.int32)
    for i, r in enumerate(rows):
        n = len(features.input_ids[r])
        input_ids[i, :n] = features.input_ids[r]
        segment_ids[i, :n] = features.segment_ids[r]
        input_mask[i, :n] = 1
    # One label (or score) per row, or a fixed-size vector of them (SQuAD: start and end).
    labels = np.zeros((size, *features.labels.shape[1:]), features.labels.dtype)
    labels[: len(rows)] = np.nan_to_num(features.labels[rows]) if len(rows) else 0
    weights = np.zeros((size,), np.float32)
    weights[: len(rows)] = 1.0
    row_ids = np.full((size,), -1, np.int32)
    row_ids[: len(rows)] = rows
    return {
        "input_ids": input_ids,
        "segment_ids": segment_ids,
        "input_mask": input_mask,
        "labels": labels,
        "example_weights": weights,
        "rows": row_ids,
    }


def _local(batch: dict, feed) -> dict:
    """This process's rows of a global batch."""
    if feed is None or feed.process_count == 1:
        return batch
    rows = feed.rows(batch["input_ids"].shape[0])
    return {k: v[rows] for k, v in batch.items()}


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    return max(1, math.ceil(num_examples / batch_size))


class TrainStream:
    """Endless training batches, epoch after epoch; `state()` is the position to save."""

    def __init__(self, features, batch_size, seed, multiple, max_length, feed, state=None):
        self.features, self.batch_size, self.seed = features, batch_size, seed
        self.multiple, self.max_length, self.feed = multiple, max_length, feed
        self.per_epoch = steps_per_epoch(len(features.input_ids), batch_size)
        self.epoch, self.batch = 0, 0
        if state:
            self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._order_epoch, self._order = None, None

    def _permutation(self) -> np.ndarray:
        if self._order_epoch != self.epoch:
            rng = np.random.default_rng((self.seed, self.epoch))
            self._order, self._order_epoch = (
                rng.permutation(len(self.features.input_ids)),
                self.epoch,
            )
        return self._order

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        order = self._permutation()
        rows = order[self.batch * self.batch_size : (self.batch + 1) * self.batch_size]
        batch = make_batch(self.features, rows, self.batch_size, self.multiple, self.max_length)
        self.batch += 1
        if self.batch == self.per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        return _local(batch, self.feed)

    def state(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "seed": self.seed}


def eval_batches(features: Features, batch_size: int, multiple: int, max_length: int, feed):
    """Every example once, longest first (so batches of one shape run together)."""
    lengths = np.array([len(ids) for ids in features.input_ids], np.int64)
    order = np.argsort(-lengths, kind="stable")
    return [
        _local(
            make_batch(features, order[i : i + batch_size], batch_size, multiple, max_length),
            feed,
        )
        for i in range(0, len(order), batch_size)
    ]
