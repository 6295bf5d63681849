"""Span extraction (SQuAD) as a task of the trainer.

Model: `BertForQuestionAnswering` (sequence output -> dense 2: a start and an end logit per
token). Loss: the mean over the batch's real windows of (cross-entropy of the start position +
cross-entropy of the end position) / 2, as Hugging Face's BertForQuestionAnswering computes it;
a window without the answer targets position 0 ([CLS]). Evaluation brings back every window's
start and end logits; turning them into answers needs all windows of a question at once, which
`evaluate` hands to the task's decoder and scorer (`decode_and_score`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bert_jax.model.config import BertConfig
from bert_jax.model.heads import BertForQuestionAnswering
from bert_jax.tasks.base import StepPlan, Task, TaskData
from bert_jax.trainer import flops


def gather_logits(outputs: list[dict[str, np.ndarray]], num_windows: int):
    """(start, end) float32 [num_windows, L] in window order from evaluation batches of any
    padded lengths (L: the longest); positions past a batch's length hold -inf."""
    length = max(o["start_logits"].shape[1] for o in outputs)
    start = np.full((num_windows, length), -np.inf, np.float32)
    end = np.full((num_windows, length), -np.inf, np.float32)
    for o in outputs:
        real = o["example_weights"] > 0
        rows = o["rows"][real]
        width = o["start_logits"].shape[1]
        start[rows, :width] = o["start_logits"][real]
        end[rows, :width] = o["end_logits"][real]
    return start, end


class SpanTask(Task):
    """Question answering by start/end positions; `decode_and_score(split, start, end)` (set by
    the concrete task) turns one split's logits into its metrics."""

    model_kind = "span"

    def __init__(
        self,
        name: str,
        model_config: BertConfig,
        max_length: int,
        main_metric: str = "f1",
        data: TaskData | None = None,
        steps: StepPlan | None = None,
    ):
        self.name = name
        self.model_config = model_config
        self.model = BertForQuestionAnswering(model_config)
        self.max_length = max_length
        self.main_metric = main_metric
        self.data = data
        self.steps = steps

    def example_batch(self) -> dict[str, np.ndarray]:
        ids = np.zeros((1, self.max_length), np.int32)
        return {"input_ids": ids, "segment_ids": ids, "input_mask": ids}

    def model_inputs(self, batch: dict) -> dict:
        return {
            "input_ids": batch["input_ids"],
            "segment_ids": batch["segment_ids"],
            "input_mask": batch["input_mask"],
        }

    def loss_sums(self, outputs, batch: dict) -> dict[str, jax.Array]:
        start_logits, end_logits = (x.astype(jnp.float32) for x in outputs)
        targets = batch["labels"].astype(jnp.int32)  # [B, 2]: start and end token
        start_loss = optax.softmax_cross_entropy_with_integer_labels(start_logits, targets[:, 0])
        end_loss = optax.softmax_cross_entropy_with_integer_labels(end_logits, targets[:, 1])
        both_right = (jnp.argmax(start_logits, -1) == targets[:, 0]) & (
            jnp.argmax(end_logits, -1) == targets[:, 1]
        )
        weights = batch["example_weights"].astype(jnp.float32)
        return {
            "loss_sum": jnp.sum((start_loss + end_loss) / 2 * weights),
            "span_correct": jnp.sum(both_right.astype(jnp.float32) * weights),
            "examples": jnp.sum(weights),
        }

    def normalisers(self, batch: dict) -> dict[str, jax.Array]:
        return {"examples": jnp.maximum(jnp.sum(batch["example_weights"]), 1.0)}

    def loss(self, sums: dict, normalisers: dict) -> jax.Array:
        return sums["loss_sum"] / normalisers["examples"]

    def train_summary(self, sums: dict[str, float]) -> dict[str, float]:
        count = max(sums["examples"], 1.0)
        # Windows whose argmax start and end are both the target (including [CLS] targets).
        return {"loss": sums["loss_sum"] / count, "span_accuracy": sums["span_correct"] / count}

    def eval_outputs(self, outputs, batch: dict) -> dict[str, jax.Array]:
        start_logits, end_logits = outputs
        return {
            "start_logits": start_logits.astype(jnp.float32),
            "end_logits": end_logits.astype(jnp.float32),
            "rows": batch["rows"],
            "example_weights": batch["example_weights"],
        }

    def plan(self, config) -> StepPlan:
        return self.steps

    def step_flops(self, batch: dict) -> float:
        rows, seq = batch["input_ids"].shape
        return flops.train_flops(self.model_config, rows, seq, 0)
