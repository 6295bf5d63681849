"""Pretraining (MLM + NSP) as a task of the trainer: `BertForPreTraining`, batches of masked
pairs from `prepare` shards (or synthetic ones), the MLM weighted mean + NSP mean loss.
"""

from __future__ import annotations

import jax
import numpy as np

from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig, preset
from bert_jax.model.heads import BertForPreTraining
from bert_jax.tasks import baselines as chance
from bert_jax.tasks import pretraining_loss as losses
from bert_jax.tasks.base import StepPlan, Task, TaskData
from bert_jax.trainer import flops


def bert_config(model, vocab_size: int, seq_length: int, num_predictions: int) -> BertConfig:
    """The architecture: the size preset, overridden by every model field the config sets (None
    keeps the preset's), with the data's vocabulary unless model.vocab_size asks for more."""
    fields = {k: v for k, v in model.items() if k not in ("size", "vocab_size") and v is not None}
    if model.vocab_size and model.vocab_size < vocab_size:
        raise UserError(
            f"model.vocab_size {model.vocab_size} is smaller than the data's vocabulary "
            f"({vocab_size} tokens)"
        )
    config = preset(model.size, "model.", vocab_size=model.vocab_size or vocab_size, **fields)
    if seq_length > config.max_position_embeddings:
        raise UserError(
            f"data.max_seq_length {seq_length} exceeds the position table "
            f"(model.max_position_embeddings {config.max_position_embeddings})"
        )
    if not 1 <= num_predictions <= seq_length:
        raise UserError(
            f"data.max_predictions_per_seq {num_predictions} must be in [1, {seq_length}]"
        )
    return config


class PretrainingTask(Task):
    """MLM on `num_predictions` gathered positions per sequence, plus NSP (`nsp_weight` 1; 0 for
    MLM-only data). `data` is None where only the model and the loss are needed (benchmarks)."""

    name = "pretraining"
    model_kind = "pretraining"
    init_encoder_only = False  # continuing pretraining takes the MLM/NSP heads as well

    def __init__(
        self,
        model_config: BertConfig,
        seq_length: int,
        num_predictions: int,
        nsp: bool = True,
        data: TaskData | None = None,
        vocab_fingerprint: str | None = None,
    ):
        self.model_config = model_config
        self.model = BertForPreTraining(model_config)
        self.seq_length, self.num_predictions = seq_length, num_predictions
        self.nsp = nsp
        self.data = data
        self.vocab_fingerprint = vocab_fingerprint
        self._baselines: chance.Baselines | None = None

    def example_batch(self) -> dict[str, np.ndarray]:
        ids = np.zeros((1, self.seq_length), np.int32)
        predictions = np.zeros((1, self.num_predictions), np.int32)
        return {
            "input_ids": ids,
            "segment_ids": ids,
            "input_mask": ids,
            "mlm_positions": predictions,
            "mlm_ids": predictions,
            "mlm_weights": predictions.astype(np.float32),
            "nsp_label": np.zeros((1,), np.int32),
        }

    def model_inputs(self, batch: dict) -> dict:
        return {
            "input_ids": batch["input_ids"],
            "segment_ids": batch["segment_ids"],
            "input_mask": batch["input_mask"],
            "mlm_positions": batch["mlm_positions"],
        }

    def loss_sums(self, outputs, batch: dict) -> dict[str, jax.Array]:
        return losses.pretraining_sums(outputs, batch)

    def normalisers(self, batch: dict) -> dict[str, jax.Array]:
        mlm, nsp = losses.normalisers(batch)
        return {"mlm": mlm, "nsp": nsp}

    def loss(self, sums: dict, normalisers: dict) -> jax.Array:
        weight = 1.0 if self.nsp else 0.0
        return losses.pretraining_loss(sums, normalisers["mlm"], normalisers["nsp"], weight)

    def train_summary(self, sums: dict[str, float]) -> dict[str, float]:
        return losses.summarize(sums, self.nsp)

    def evaluate(self, split: str, outputs: list[dict[str, np.ndarray]]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for sums in outputs:
            for key, value in sums.items():
                totals[key] = totals.get(key, 0.0) + float(value)
        return losses.summarize(totals, self.nsp) if totals else {}

    def baselines(self) -> chance.Baselines:
        """mlm_accuracy: the unigram baseline (always the most frequent masked token of the
        held-out batches); nsp_accuracy: the share of their majority NSP label (about 50%).
        Computed once, on the batches evaluation uses; empty without a held-out split."""
        if self._baselines is None:
            self._baselines = {}
            if self.data is not None and self.data.has_eval:
                batches = self.data.evaluation()["eval"]
                token_text = getattr(self.data, "token_text", None)
                self._baselines = chance.pretraining(batches, self.nsp, token_text)
        return self._baselines

    def plan(self, config) -> StepPlan:
        t = config.train
        if t.num_steps < 1 or t.eval_every_steps < 1:
            raise UserError("train.num_steps and train.eval_every_steps must be positive")
        return StepPlan(t.num_steps, t.eval_every_steps)

    def step_flops(self, batch: dict) -> float:
        rows, seq = batch["input_ids"].shape
        predictions = batch["mlm_positions"].shape[1]
        return flops.train_flops(self.model_config, rows, seq, predictions)

    def checkpoint_metadata(self) -> dict:
        return {**super().checkpoint_metadata(), "vocab_fingerprint": self.vocab_fingerprint}

    def describe(self) -> str:
        c = self.model_config
        return (
            f"pretrain: {c.num_layers} layers, hidden {c.hidden_size}, vocab {c.vocab_size}, "
            f"seq {self.seq_length}"
        )


def build(config, workdir, feed, eval_batch_size: int, warn) -> PretrainingTask:
    """The pretraining task of `config` (the trainer's `BuildTask`): its shards (or synthetic
    batches) opened for this process, the architecture sized to their vocabulary."""
    from bert_jax.tasks import pretraining_data

    data = pretraining_data.open_data(config, eval_batch_size, feed, workdir, warn=warn)
    seq, predictions = config.data.max_seq_length, config.data.max_predictions_per_seq
    model_config = bert_config(config.model, data.vocab_size, seq, predictions)
    nsp = config.data.mode != "mlm_only"
    return PretrainingTask(model_config, seq, predictions, nsp, data, data.vocab_fingerprint)
