"""Sentence (pair) classification and regression as a task of the trainer: GLUE and any task
with one label (or one score) per example.

Model: `BertForSequenceClassification` (pooled [CLS] -> dropout -> dense), one output per label,
or one output for regression (STS-B). Loss: the mean cross-entropy over the batch's real rows
(squared error for regression), as Hugging Face's BertForSequenceClassification computes it.
Evaluation brings back every row's logits and scores them with the official metric definitions
(`bert_jax/tasks/metrics.py`), which need all predictions at once (F1, Matthews, correlations).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bert_jax.model.config import BertConfig
from bert_jax.model.heads import BertForSequenceClassification
from bert_jax.tasks import baselines as chance
from bert_jax.tasks import metrics as official
from bert_jax.tasks.base import StepPlan, Task, TaskData
from bert_jax.trainer import flops


@dataclasses.dataclass
class Predictions:
    """One evaluation split's predictions, in the split's example order."""

    rows: np.ndarray  # position of each example in the split
    logits: np.ndarray  # [N, labels] ([N, 1] for regression)
    labels: np.ndarray  # gold label index or score (-1 / nan where the split has none)

    @property
    def predicted(self) -> np.ndarray:
        """Label indices, or scores for regression."""
        if self.logits.shape[1] == 1:
            return self.logits[:, 0]
        return np.argmax(self.logits, axis=1)

    @property
    def probabilities(self) -> np.ndarray:
        shifted = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)


def gather_predictions(outputs: list[dict[str, np.ndarray]]) -> Predictions:
    """The real rows (weight 1) of every evaluation batch, ordered by their position."""
    logits = np.concatenate([o["logits"] for o in outputs])
    labels = np.concatenate([o["labels"] for o in outputs])
    rows = np.concatenate([o["rows"] for o in outputs])
    real = np.concatenate([o["example_weights"] for o in outputs]) > 0
    logits, labels, rows = logits[real], labels[real], rows[real]
    order = np.argsort(rows, kind="stable")
    return Predictions(rows[order], logits[order], labels[order])


class SequenceClassificationTask(Task):
    """`num_labels` classes (1: regression), scored by `metric_names`; the best checkpoint is
    chosen by `main_metric` (a key of the evaluation results)."""

    model_kind = "classification"
    label_names: tuple[str, ...] | None = None  # the labels' names, for messages

    def __init__(
        self,
        name: str,
        model_config: BertConfig,
        num_labels: int,
        metric_names: tuple[str, ...],
        main_metric: str,
        max_length: int,
        data: TaskData | None = None,
        steps: StepPlan | None = None,
    ):
        self.name = name
        self.model_config = model_config
        self.model = BertForSequenceClassification(model_config, num_labels)
        self.num_labels = num_labels
        self.metric_names = metric_names
        self.main_metric = main_metric
        self.max_length = max_length
        self.data = data
        self.steps = steps

    @property
    def regression(self) -> bool:
        return self.num_labels == 1

    def example_batch(self) -> dict[str, np.ndarray]:
        ids = np.zeros((1, self.max_length), np.int32)
        return {"input_ids": ids, "segment_ids": ids, "input_mask": ids}

    def model_inputs(self, batch: dict) -> dict:
        return {
            "input_ids": batch["input_ids"],
            "segment_ids": batch["segment_ids"],
            "input_mask": batch["input_mask"],
        }

    def _per_example(self, logits, batch):
        """(loss, correct) per row, float32."""
        labels = batch["labels"]
        if self.regression:
            error = logits[:, 0] - labels.astype(jnp.float32)
            return error * error, jnp.zeros_like(error)
        labels = labels.astype(jnp.int32)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        return loss, (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)

    def loss_sums(self, outputs, batch: dict) -> dict[str, jax.Array]:
        weights = batch["example_weights"].astype(jnp.float32)
        loss, correct = self._per_example(outputs.astype(jnp.float32), batch)
        return {
            "loss_sum": jnp.sum(loss * weights),
            "correct": jnp.sum(correct * weights),
            "examples": jnp.sum(weights),
        }

    def normalisers(self, batch: dict) -> dict[str, jax.Array]:
        return {"examples": jnp.maximum(jnp.sum(batch["example_weights"]), 1.0)}

    def loss(self, sums: dict, normalisers: dict) -> jax.Array:
        return sums["loss_sum"] / normalisers["examples"]

    def train_summary(self, sums: dict[str, float]) -> dict[str, float]:
        count = max(sums["examples"], 1.0)
        out = {"loss": sums["loss_sum"] / count}
        if not self.regression:
            out["accuracy"] = sums["correct"] / count
        return out

    def eval_outputs(self, outputs, batch: dict) -> dict[str, jax.Array]:
        return {
            "logits": outputs.astype(jnp.float32),
            "labels": batch["labels"],
            "rows": batch["rows"],
            "example_weights": batch["example_weights"],
        }

    def score(self, predictions: Predictions) -> dict[str, float]:
        """The official metrics of a labelled split's predictions (fractions, not percent)."""
        labels = predictions.labels
        if not self.regression:
            labels = labels.astype(np.int64)
        return {
            name: float(official.METRICS[name](predictions.predicted, labels))
            for name in self.metric_names
        }

    def evaluate(self, split: str, outputs: list[dict[str, np.ndarray]]) -> dict[str, float]:
        predictions = gather_predictions(outputs)
        loss = self._host_loss(predictions)
        return {**self.score(predictions), "loss": loss}

    def baselines(self) -> chance.Baselines:
        """Each metric of always predicting a split's majority class (accuracy: that class's
        share), on the evaluation batches; none for regression."""
        if self.regression or self.data is None:
            return {}
        metrics = {name: official.METRICS[name] for name in self.metric_names}
        return chance.majority_class(self.data.evaluation(), metrics, self.label_names)

    def _host_loss(self, predictions: Predictions) -> float:
        if self.regression:
            return float(np.mean((predictions.logits[:, 0] - predictions.labels) ** 2))
        picked = predictions.probabilities[
            np.arange(len(predictions.labels)), predictions.labels.astype(np.int64)
        ]
        return float(-np.mean(np.log(np.maximum(picked, 1e-30))))

    def plan(self, config) -> StepPlan:
        return self.steps

    def step_flops(self, batch: dict) -> float:
        rows, seq = batch["input_ids"].shape
        # The count includes the pooler and a 2-way head; the classifier's width adds ~0.
        return flops.train_flops(self.model_config, rows, seq, 0)

    def checkpoint_metadata(self) -> dict:
        return {**super().checkpoint_metadata(), "num_labels": self.num_labels}

    def describe(self) -> str:
        c = self.model_config
        kind = "regression" if self.regression else f"{self.num_labels} labels"
        return (
            f"finetune {self.name} ({kind}): {c.num_layers} layers, hidden {c.hidden_size}, "
            f"max length {self.max_length}"
        )
