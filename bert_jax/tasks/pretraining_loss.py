"""Pretraining losses, in float32 whatever the compute dtype.

The step works with *sums* over the examples it sees (loss sums, correct counts, weights), so
micro-batches add up exactly to the full batch and evaluation adds up over many batches; the
loss divides the sums by normalisers taken from the whole batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

# Keys of the per-batch sums `pretraining_sums` returns.
SUM_KEYS = (
    "mlm_loss_sum",
    "mlm_correct",
    "mlm_weight",
    "nsp_loss_sum",
    "nsp_correct",
    "nsp_count",
)


def pretraining_sums(outputs: dict, batch: dict) -> dict[str, jax.Array]:
    """Float32 scalar sums over the batch: MLM cross-entropy weighted by `mlm_weights` (padding
    slots weigh 0), NSP cross-entropy, and the correct predictions of each."""
    mlm_logits_BxPxV = outputs["mlm_logits"].astype(jnp.float32)
    mlm_ids_BxP = batch["mlm_ids"]
    weights_BxP = batch["mlm_weights"].astype(jnp.float32)
    mlm_ce_BxP = optax.softmax_cross_entropy_with_integer_labels(mlm_logits_BxPxV, mlm_ids_BxP)
    mlm_hit_BxP = (jnp.argmax(mlm_logits_BxPxV, axis=-1) == mlm_ids_BxP).astype(jnp.float32)

    nsp_logits_Bx2 = outputs["nsp_logits"].astype(jnp.float32)
    labels_B = batch["nsp_label"]
    rows_B = example_weights(batch)
    nsp_ce_B = optax.softmax_cross_entropy_with_integer_labels(nsp_logits_Bx2, labels_B)
    nsp_hit_B = (jnp.argmax(nsp_logits_Bx2, axis=-1) == labels_B).astype(jnp.float32)
    return {
        "mlm_loss_sum": jnp.sum(mlm_ce_BxP * weights_BxP),
        "mlm_correct": jnp.sum(mlm_hit_BxP * weights_BxP),
        "mlm_weight": jnp.sum(weights_BxP),
        "nsp_loss_sum": jnp.sum(nsp_ce_B * rows_B),
        "nsp_correct": jnp.sum(nsp_hit_B * rows_B),
        "nsp_count": jnp.sum(rows_B),
    }


def example_weights(batch: dict) -> jax.Array:
    """1 for real sequences, 0 for the padding rows that fill the last eval batch."""
    if "example_weights" in batch:
        return batch["example_weights"].astype(jnp.float32)
    return jnp.ones(batch["nsp_label"].shape, jnp.float32)


def normalisers(batch: dict) -> tuple[jax.Array, jax.Array]:
    """(MLM, NSP) divisors for the whole batch: the real predictions and the real sequences,
    each at least 1 so an all-padding batch gives loss 0, not NaN."""
    mlm = jnp.maximum(jnp.sum(batch["mlm_weights"].astype(jnp.float32)), 1.0)
    nsp = jnp.maximum(jnp.sum(example_weights(batch)), 1.0)
    return mlm, nsp


def pretraining_loss(
    sums: dict, mlm_normaliser: jax.Array, nsp_normaliser: jax.Array, nsp_weight: float = 1.0
) -> jax.Array:
    """MLM weighted mean + `nsp_weight` * NSP mean (BERT: weight 1; MLM-only data: 0)."""
    mlm = sums["mlm_loss_sum"] / mlm_normaliser
    if not nsp_weight:
        return mlm
    return mlm + nsp_weight * sums["nsp_loss_sum"] / nsp_normaliser


def summarize(sums: dict, nsp: bool = True) -> dict[str, float]:
    """Host side: MLM/NSP loss and accuracy from summed counts; `loss` = MLM mean + NSP mean."""
    weight = max(float(sums["mlm_weight"]), 1.0)
    out = {
        "mlm_loss": float(sums["mlm_loss_sum"]) / weight,
        "mlm_accuracy": float(sums["mlm_correct"]) / weight,
    }
    loss = out["mlm_loss"]
    if nsp:
        count = max(float(sums["nsp_count"]), 1.0)
        out["nsp_loss"] = float(sums["nsp_loss_sum"]) / count
        out["nsp_accuracy"] = float(sums["nsp_correct"]) / count
        loss += out["nsp_loss"]
    out["loss"] = loss
    return out
