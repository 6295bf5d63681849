"""Pretraining loss and metric sums against a plain numpy log-softmax reference."""

import jax.numpy as jnp
import numpy as np

from bert_jax.tasks import pretraining_loss as losses
from bert_jax.trainer import accumulate as metrics


def numpy_ce(logits, labels):
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]


def random_case(seed=0, batch=6, predictions=5, vocab=11):
    rng = np.random.default_rng(seed)
    weights = (rng.random((batch, predictions)) < 0.6).astype(np.float32)
    weights[0] = 0.0  # a sequence with no predictions at all
    outputs = {
        "mlm_logits": rng.normal(0, 3, (batch, predictions, vocab)).astype(np.float32),
        "nsp_logits": rng.normal(0, 2, (batch, 2)).astype(np.float32),
    }
    batch_ = {
        "mlm_ids": rng.integers(0, vocab, (batch, predictions)).astype(np.int32),
        "mlm_weights": weights,
        "nsp_label": rng.integers(0, 2, batch).astype(np.int32),
    }
    return outputs, batch_


def test_loss_is_weighted_mlm_mean_plus_nsp_mean():
    outputs, batch = random_case()
    sums = losses.pretraining_sums({k: jnp.asarray(v) for k, v in outputs.items()}, batch)
    loss = losses.pretraining_loss(sums, *losses.normalisers(batch))

    w = batch["mlm_weights"]
    mlm = (numpy_ce(outputs["mlm_logits"], batch["mlm_ids"]) * w).sum() / w.sum()
    nsp = numpy_ce(outputs["nsp_logits"], batch["nsp_label"]).mean()
    np.testing.assert_allclose(float(loss), mlm + nsp, rtol=1e-5)
    hits = (outputs["mlm_logits"].argmax(-1) == batch["mlm_ids"]) * w
    summary = losses.summarize({k: float(v) for k, v in sums.items()})
    np.testing.assert_allclose(summary["mlm_accuracy"], hits.sum() / w.sum(), rtol=1e-6)
    np.testing.assert_allclose(summary["mlm_loss"], mlm, rtol=1e-5)
    nsp_acc = (outputs["nsp_logits"].argmax(-1) == batch["nsp_label"]).mean()
    np.testing.assert_allclose(summary["nsp_accuracy"], nsp_acc, rtol=1e-6)


def test_mlm_only_drops_nsp_and_empty_batches_give_zero_not_nan():
    outputs, batch = random_case(seed=1)
    batch["mlm_weights"] = np.zeros_like(batch["mlm_weights"])
    sums = losses.pretraining_sums(outputs, batch)
    mlm_norm, nsp_norm = losses.normalisers(batch)
    assert float(losses.pretraining_loss(sums, mlm_norm, nsp_norm, nsp_weight=0.0)) == 0.0


def test_padding_rows_of_the_last_eval_batch_do_not_count():
    outputs, batch = random_case(seed=2)
    batch["example_weights"] = np.array([1, 1, 1, 1, 0, 0], np.float32)
    batch["mlm_weights"][4:] = 0
    sums = losses.pretraining_sums(outputs, batch)
    real = {k: v[:4] for k, v in outputs.items()}
    real_batch = {k: v[:4] for k, v in batch.items() if k != "example_weights"}
    reference = losses.pretraining_sums(real, real_batch)
    for key in losses.SUM_KEYS:
        np.testing.assert_allclose(float(sums[key]), float(reference[key]), rtol=1e-6)
    assert float(sums["nsp_count"]) == 4.0


def test_accumulator_pools_sums_and_averages_the_rest():
    acc = metrics.Accumulator()
    acc.add({"mlm_loss_sum": 6.0, "mlm_correct": 1.0, "mlm_weight": 3.0, "nsp_loss_sum": 1.0,
             "nsp_correct": 1.0, "nsp_count": 2.0, "grad_norm": 1.0})  # fmt: skip
    acc.add({"mlm_loss_sum": 2.0, "mlm_correct": 1.0, "mlm_weight": 1.0, "nsp_loss_sum": 1.0,
             "nsp_correct": 2.0, "nsp_count": 2.0, "grad_norm": 3.0})  # fmt: skip
    out = acc.summary(losses.summarize)
    assert out["mlm_loss"] == 2.0 and out["mlm_accuracy"] == 0.5  # pooled, not mean of means
    assert out["nsp_accuracy"] == 0.75 and out["grad_norm"] == 2.0
    assert metrics.non_finite({"a": 1.0, "b": float("nan"), "c": np.inf}) == ["b", "c"]


def test_logged_loss_is_mlm_plus_nsp_from_the_pooled_sums():
    """The steps also return their own batch's `loss`; the logged loss over several steps must be
    the pooled mlm_loss + nsp_loss, not the mean of the steps' losses (which weighs a step with
    few predictions like one with many)."""
    steps = [
        {"mlm_loss_sum": 6.0, "mlm_weight": 3.0, "nsp_loss_sum": 1.0, "nsp_count": 2.0},
        {"mlm_loss_sum": 9.0, "mlm_weight": 1.0, "nsp_loss_sum": 3.0, "nsp_count": 2.0},
    ]
    acc = metrics.Accumulator()
    for sums in steps:
        step_loss = sums["mlm_loss_sum"] / sums["mlm_weight"] + sums["nsp_loss_sum"] / 2.0
        acc.add({**sums, "mlm_correct": 0.0, "nsp_correct": 0.0, "loss": step_loss})
    out = acc.summary(losses.summarize)
    assert out["mlm_loss"] == 15.0 / 4.0 and out["nsp_loss"] == 1.0
    assert out["loss"] == out["mlm_loss"] + out["nsp_loss"]
    assert acc.summary(lambda s: losses.summarize(s, nsp=False))["loss"] == out["mlm_loss"]
