"""Token classification (NER) as a task of the trainer: one tag per word.

Model: `BertForTokenClassification` (sequence output -> dropout -> dense), one output per label
at every position. Each word is tokenized on its own; its FIRST piece carries the word's label,
its other pieces, [CLS], [SEP] and padding weigh 0 in the loss (Hugging Face's -100 labels).
Loss: the mean cross-entropy over the labelled tokens of the whole batch (the normaliser is the
batch's labelled-token count, so micro-batches and devices add up to the same mean).

Evaluation brings back the argmax label of every position and the batch's row numbers; the host
puts the first-piece predictions back on their sentences' words (joining the rows of a sentence
that was split) and scores the word tags with conlleval's entity metrics (`ner_metrics`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from bert_jax.model.config import BertConfig
from bert_jax.model.heads import BertForTokenClassification
from bert_jax.tasks import ner_metrics
from bert_jax.tasks.base import StepPlan, Task, TaskData
from bert_jax.trainer import flops


@dataclasses.dataclass
class WordFeatures:
    """Model rows of tagged sentences: `[CLS] pieces [SEP]`, one row per sentence, or several
    consecutive rows (split at word boundaries) for a sentence longer than the row length.
    Ragged; `sentence_batches` pads them."""

    input_ids: list[np.ndarray]  # int32 per row
    segment_ids: list[np.ndarray]  # int32 per row, all 0
    labels: np.ndarray  # int32 [rows], 0: the per-row slot sentence_batches fills (unused)
    positions: list[np.ndarray]  # int32 per row: token position of each word's first piece
    words: list[np.ndarray]  # int64 per row: index in its sentence of each of those words
    label_ids: list[np.ndarray]  # int32 per row: each word's label (-1: not a known label)
    sentence: np.ndarray  # int64 [rows]: the sentence of each row
    tags: list[tuple[str, ...]]  # per sentence: the gold tags of its words
    split_sentences: int = 0  # sentences longer than one row, split into several
    cut_words: int = 0  # words with more pieces than a row holds (first pieces kept)
    empty_words: int = 0  # words with no piece at all (predicted O)

    def __len__(self) -> int:
        return len(self.input_ids)


def word_predictions(
    features: WordFeatures, outputs: list[dict[str, np.ndarray]], labels: tuple[str, ...]
) -> list[list[str]]:
    """Each sentence's predicted tag per word from the evaluation outputs of all its batches
    (`predicted` label ids [B, L] and `rows`); a word without a piece is predicted O."""
    names = np.asarray(labels)
    tags = [["O"] * len(gold) for gold in features.tags]
    for out in outputs:
        for i, row in enumerate(out["rows"]):
            if row < 0:
                continue
            predicted = names[out["predicted"][i, features.positions[row]]]
            sentence = tags[features.sentence[row]]
            for word, tag in zip(features.words[row], predicted.tolist(), strict=True):
                sentence[word] = tag
    return tags


class TokenClassificationTask(Task):
    """`labels` tags, one per word; `main_metric` (e.g. "testa/f1") picks the best checkpoint.
    The data's evaluation splits are `WordFeatures` (`data.eval_features`)."""

    model_kind = "token_classification"

    def __init__(
        self,
        name: str,
        model_config: BertConfig,
        labels: tuple[str, ...],
        main_metric: str,
        max_length: int,
        data: TaskData | None = None,
        steps: StepPlan | None = None,
    ):
        self.name = name
        self.model_config = model_config
        self.labels = tuple(labels)
        self.model = BertForTokenClassification(model_config, len(self.labels))
        self.main_metric = main_metric
        self.max_length = max_length
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

    def _token_losses(self, logits, batch):
        """(cross-entropy, correct) per position, float32, and the position weights."""
        labels = batch["labels"].astype(jnp.int32)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
        correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
        return loss, correct, batch["label_weights"].astype(jnp.float32)

    def loss_sums(self, outputs, batch: dict) -> dict[str, jax.Array]:
        loss, correct, weights = self._token_losses(outputs, batch)
        return {
            "loss_sum": jnp.sum(loss * weights),
            "correct": jnp.sum(correct * weights),
            "tokens": jnp.sum(weights),
        }

    def normalisers(self, batch: dict) -> dict[str, jax.Array]:
        return {"tokens": jnp.maximum(jnp.sum(batch["label_weights"]), 1.0)}

    def loss(self, sums: dict, normalisers: dict) -> jax.Array:
        return sums["loss_sum"] / normalisers["tokens"]

    def train_summary(self, sums: dict[str, float]) -> dict[str, float]:
        count = max(sums["tokens"], 1.0)
        return {"loss": sums["loss_sum"] / count, "accuracy": sums["correct"] / count}

    def eval_outputs(self, outputs, batch: dict) -> dict[str, jax.Array]:
        return {
            **self.loss_sums(outputs, batch),
            "predicted": jnp.argmax(outputs, axis=-1).astype(jnp.int32),
            "rows": batch["rows"],
        }

    def evaluate(self, split: str, outputs: list[dict[str, np.ndarray]]) -> dict[str, float]:
        features = self.data.eval_features[split]
        predicted = word_predictions(features, outputs, self.labels)
        tokens = sum(float(o["tokens"]) for o in outputs)
        loss = sum(float(o["loss_sum"]) for o in outputs) / max(tokens, 1.0)
        return {**ner_metrics.score(features.tags, predicted), "loss": loss}

    def plan(self, config) -> StepPlan:
        return self.steps

    def step_flops(self, batch: dict) -> float:
        rows, seq = batch["input_ids"].shape
        # The count includes a pooler this model lacks; the tag classifier adds ~0.
        return flops.train_flops(self.model_config, rows, seq, 0)

    def checkpoint_metadata(self) -> dict:
        return {
            **super().checkpoint_metadata(),
            "num_labels": len(self.labels),
            "labels": list(self.labels),
        }

    def describe(self) -> str:
        c = self.model_config
        return (
            f"finetune {self.name} ({len(self.labels)} tags): {c.num_layers} layers, "
            f"hidden {c.hidden_size}, max length {self.max_length}"
        )
