"""Random pretraining batches with the real batch layout, for smoke runs, tests and benchmarks.

Each global batch is a pure function of (seed, step), and every process takes its own rows of
it (the rows its devices hold: `HostFeed.rows`), so any number of processes sees the same global
batch: runs on different meshes and process counts are comparable step for step.
"""

from __future__ import annotations

import numpy as np


def global_batch(
    seed: int, step: int, batch_size: int, seq_length: int, num_predictions: int, vocab_size: int
) -> dict[str, np.ndarray]:
    """One batch as the data pipeline makes them: padded pairs, [CLS]=2/[SEP]=3 ids aside,
    up to `num_predictions` sorted masked positions with weights, NSP labels."""
    rng = np.random.default_rng([seed, step])
    shape = (batch_size, seq_length)
    lengths = rng.integers(max(5, seq_length // 2), seq_length + 1, size=batch_size)
    position = np.arange(seq_length)[None, :]
    input_mask = (position < lengths[:, None]).astype(np.int32)
    input_ids = rng.integers(5, vocab_size, size=shape).astype(np.int32) * input_mask
    input_ids[:, 0] = 2
    input_ids[np.arange(batch_size), lengths - 1] = 3
    first_b = lengths // 2
    segment_ids = ((position >= first_b[:, None]) & (input_mask == 1)).astype(np.int32)

    mlm_positions = np.zeros((batch_size, num_predictions), np.int32)
    mlm_weights = np.zeros((batch_size, num_predictions), np.float32)
    for row, length in enumerate(lengths):
        count = min(num_predictions, max(1, round(0.15 * length)))
        chosen = np.sort(rng.choice(np.arange(1, length - 1), size=count, replace=False))
        mlm_positions[row, :count] = chosen
        mlm_weights[row, :count] = 1.0
    mlm_ids = (np.take_along_axis(input_ids, mlm_positions, axis=1) * (mlm_weights > 0)).astype(
        np.int32
    )
    return {
        "input_ids": input_ids,
        "segment_ids": segment_ids,
        "input_mask": input_mask,
        "mlm_positions": mlm_positions,
        "mlm_ids": mlm_ids,
        "mlm_weights": mlm_weights,
        "nsp_label": rng.integers(0, 2, size=batch_size).astype(np.int32),
    }


class SyntheticBatches:
    """An endless, resumable stream of `rows` (global row indices; None: all) of every
    `global_batch(seed, step, ...)`."""

    def __init__(self, seed, batch_size, seq_length, num_predictions, vocab_size,
                 rows=None, step=0):  # fmt: skip
        self.args = (batch_size, seq_length, num_predictions, vocab_size)
        self.seed, self.step = seed, step
        self.rows = slice(None) if rows is None else rows

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = global_batch(self.seed, self.step, *self.args)
        self.step += 1
        return {k: v[self.rows] for k, v in batch.items()}

    def get_state(self) -> dict:
        return {"step": self.step}

    def set_state(self, state: dict) -> None:
        self.step = int(state["step"])
