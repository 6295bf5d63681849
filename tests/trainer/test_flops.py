"""The analytic FLOP count (for MFU) against XLA's own count of the compiled train step, and
the peak-rate table lookup."""

import flax.linen as nn
import jax
import pytest

from bert_jax.data import synthetic as synthetic_data
from bert_jax.model.config import preset
from bert_jax.model.heads import BertForPreTraining
from bert_jax.tasks import pretraining_loss as losses
from bert_jax.trainer import flops


@pytest.mark.parametrize(
    "size, vocab, gather",
    [("mini", 1000, True), ("small", 30522, True), ("small", 30522, False)],
)
def test_train_flops_match_what_xla_counts(size, vocab, gather):
    """With the last layer gathered (the default) and without: the count follows the model."""
    config = preset(
        size, vocab_size=vocab, hidden_dropout=0.0, attention_dropout=0.0,
        gather_last_layer=gather,
    )  # fmt: skip
    model, (b, s, p) = BertForPreTraining(config), (2, 128, 20)
    batch = synthetic_data.global_batch(0, 0, b, s, p, vocab)
    inputs = [batch[k] for k in ("input_ids", "segment_ids", "input_mask", "mlm_positions")]
    params = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.PRNGKey(0), *inputs))["params"])

    def loss(params):
        sums = losses.pretraining_sums(model.apply({"params": params}, *inputs), batch)
        return losses.pretraining_loss(sums, *losses.normalisers(batch))

    cost = jax.jit(jax.grad(loss)).lower(params).compile().cost_analysis()
    counted = (cost[0] if isinstance(cost, list) else cost)["flops"]
    # XLA also counts the element-wise work (GELU, softmax, LayerNorm) we leave out: a few %.
    assert 1.0 <= counted / flops.train_flops(config, b, s, p) <= 1.06


def test_peak_table():
    assert flops.peak_flops("TPU v4") == 275e12
    assert flops.peak_flops("TPU v5 lite") == 197e12
    assert flops.peak_flops("TPU v5p") == flops.peak_flops("TPU v5") == 459e12
    assert flops.peak_flops("TPU v6 lite") == 918e12
    assert flops.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert flops.peak_flops("NVIDIA H100 PCIe") == 756e12
    assert flops.peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert flops.peak_flops("cpu") is None


def test_float32_models_are_measured_against_the_float32_peak():
    """JAX runs float32 dots as TF32 on Ampere/Hopper (half the bfloat16 rate), as true float32
    at "highest" precision, and as one bfloat16 pass on TPUs."""
    h100 = "NVIDIA H100 80GB HBM3"
    assert flops.peak_flops(h100, "float32") == 495e12
    assert flops.peak_flops(h100, "float32", "highest") == 67e12
    assert flops.peak_flops(h100, "bfloat16", "highest") == 989e12
    assert flops.peak_flops("NVIDIA A100-SXM4-80GB", "float32") == 156e12
    assert flops.peak_flops("TPU v4", "float32") == 275e12
    assert flops.peak_flops("TPU v4", "float32", "highest") is None
    with pytest.raises(ValueError, match="float64"):
        flops.peak_flops(h100, "float64")
