"""Model structure: every preset builds (eval_shape, so `large` costs no memory), parameter
counts match the released sizes, logical axis names cover every parameter."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bert_jax.errors import UserError
from bert_jax.model.bert import BertModel
from bert_jax.model.config import SIZES, BertConfig, from_json_dict, preset, to_hf_dict
from bert_jax.model.heads import TASK_MODELS, BertForPreTraining


def abstract_params(model, length=8, **kwargs):
    ids = jnp.zeros((1, length), jnp.int32)
    return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), ids, **kwargs))["params"]


def count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nn.unbox(tree)))


@pytest.mark.parametrize("name", list(SIZES))
def test_every_preset_builds(name):
    c = preset(name)
    params = nn.unbox(abstract_params(BertForPreTraining(c)))
    assert c.intermediate_size == 4 * c.hidden_size
    assert params["bert"]["embeddings"]["word_embeddings"]["embedding"].shape == (
        30522,
        c.hidden_size,
    )


def test_parameter_counts_match_released_sizes():
    # bert-base-uncased: 109.48M in BertModel (incl. pooler); large 335.1M.
    assert count(abstract_params(BertModel(preset("base")))) == 109_482_240
    assert 109e6 <= count(abstract_params(BertForPreTraining(preset("base")))) <= 111e6
    assert 335e6 <= count(abstract_params(BertForPreTraining(preset("large")))) <= 340e6


def test_scanned_and_unrolled_have_the_same_parameter_count():
    c = preset("mini")
    assert count(abstract_params(BertForPreTraining(c))) == count(
        abstract_params(BertForPreTraining(c.replace(scan_layers=True)))
    )


def test_every_parameter_has_logical_names():
    params = abstract_params(BertForPreTraining(preset("tiny").replace(scan_layers=True)))
    leaves = jax.tree.leaves(params, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    assert leaves and all(isinstance(x, nn.LogicallyPartitioned) for x in leaves)
    for leaf in leaves:
        assert len(leaf.names) == leaf.value.ndim


@pytest.mark.parametrize("kind", sorted(TASK_MODELS))
def test_task_models_build(kind):
    c = preset("tiny", vocab_size=100)
    cls = TASK_MODELS[kind]
    model = cls(c, num_labels=3) if kind in ("classification", "token_classification") else cls(c)
    ids = jnp.ones((2, 3, 8) if kind == "multiple_choice" else (2, 8), jnp.int32)
    out = model.apply(model.init(jax.random.PRNGKey(0), ids), ids)
    leaves = jax.tree.leaves(out)
    assert all(x.dtype == jnp.float32 and np.isfinite(np.asarray(x)).all() for x in leaves)


def test_bfloat16_compute_keeps_float32_params_and_logits():
    c = preset("tiny", vocab_size=100, dtype="bfloat16")
    model = BertForPreTraining(c)
    ids = jnp.ones((2, 8), jnp.int32)
    variables = model.init(jax.random.PRNGKey(0), ids)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nn.unbox(variables)))
    out = model.apply(variables, ids)
    assert out["sequence_output"].dtype == jnp.bfloat16
    assert out["mlm_logits"].dtype == jnp.float32


@pytest.mark.parametrize(
    "stack", [{}, {"remat": True}, {"scan_layers": True}, {"attention": "dot_product"}]
)
def test_last_layer_at_the_masked_positions_is_exact(stack):
    """Running the last layer only at [CLS] and the masked positions changes no output and no
    gradient (whether it saves the work is `tests/trainer/test_flops.py`'s count)."""
    c = preset("tiny", vocab_size=200, hidden_dropout=0.0, attention_dropout=0.0, **stack)
    rng = np.random.default_rng(0)
    ids = jnp.asarray(rng.integers(5, 200, (3, 16)), jnp.int32)
    mask = jnp.asarray(np.arange(16) < np.array([[16], [11], [7]]), jnp.int32)
    positions = jnp.asarray([[3, 9, 0], [1, 10, 10], [6, 2, 0]], jnp.int32)  # repeats, [CLS]
    models = [BertForPreTraining(c.replace(gather_last_layer=g)) for g in (True, False)]
    params = models[0].init(jax.random.PRNGKey(0), ids)["params"]

    def run(model, params):
        out = model.apply({"params": params}, ids, jnp.zeros_like(ids), mask, positions)
        return jnp.sum(out["mlm_logits"] ** 2) + jnp.sum(out["nsp_logits"] ** 2), out

    (loss, out), grads = jax.value_and_grad(lambda p: run(models[0], p), has_aux=True)(params)
    (ref_loss, ref), ref_grads = jax.value_and_grad(lambda p: run(models[1], p), has_aux=True)(
        params
    )
    assert out["sequence_output"].shape == (3, 3, c.hidden_size)
    for name in ("mlm_logits", "nsp_logits", "pooled_output", "sequence_output"):
        np.testing.assert_allclose(out[name], ref[name], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
        # float32 sums in another order: within 1e-4 of each gradient's own scale
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max() + 1e-7


def test_dot_product_attention_matches_einsum():
    c = preset("tiny", vocab_size=100)
    ids = jnp.arange(16).reshape(2, 8) % 100
    mask = jnp.array([[1] * 8, [1] * 5 + [0] * 3])
    model = BertModel(c)
    variables = model.init(jax.random.PRNGKey(0), ids)
    a, _ = model.apply(variables, ids, None, mask)
    b, _ = BertModel(c.replace(attention="dot_product")).apply(variables, ids, None, mask)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_initializer_is_tf_truncated_normal():
    # TF's truncated_normal_initializer(0.02) cuts at +-0.04 and is not rescaled: std ~0.0176.
    model = BertModel(preset("mini"))  # a 30522 x 256 table: enough samples, a fast init
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4), jnp.int32))
    table = np.asarray(nn.unbox(params)["params"]["embeddings"]["word_embeddings"]["embedding"])
    assert np.abs(table).max() <= 0.04
    assert abs(table.std() - 0.02 * 0.8796) < 2e-4


def test_bad_configs_fail_with_one_line():
    with pytest.raises(UserError, match="unknown model size 'huge'"):
        preset("huge")
    with pytest.raises(UserError, match="not divisible"):
        BertConfig(hidden_size=100, num_heads=3)
    with pytest.raises(UserError, match="exceeds the position table"):
        abstract_params(BertModel(preset("tiny", max_position_embeddings=8)), length=9)
    with pytest.raises(UserError, match="missing key 'hidden_size'"):
        from_json_dict({"vocab_size": 3})
    with pytest.raises(UserError, match="position_embedding_type 'relative_key'"):
        from_json_dict({**to_hf_dict(preset("tiny")), "position_embedding_type": "relative_key"})


def test_hf_config_round_trip():
    c = preset("small", gelu_approximate=True)
    assert from_json_dict(to_hf_dict(c)) == c.replace(gelu_approximate=True)


def test_gelu_is_the_exact_erf_gelu():
    """x * Phi(x) against scipy's erf in float64; the tanh form where the config asks for it."""
    from scipy import special

    from bert_jax.model.bert import gelu

    x = np.linspace(-12.0, 12.0, 20001)
    exact = x * 0.5 * (1.0 + special.erf(x / np.sqrt(2.0)))
    ours = np.asarray(gelu(BertConfig(), jnp.asarray(x, jnp.float32)), np.float64)
    np.testing.assert_allclose(ours, exact, rtol=1e-6, atol=1e-6)
    tanh = gelu(BertConfig(gelu_approximate=True), jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(tanh, jax.nn.gelu(jnp.asarray(x, jnp.float32), approximate=True))
    # Its gradient is Phi(x) + x * phi(x).
    grad = jax.vmap(jax.grad(lambda v: gelu(BertConfig(), v)))(jnp.asarray(x, jnp.float32))
    pdf = np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    expected = 0.5 * (1.0 + special.erf(x / np.sqrt(2.0))) + x * pdf
    np.testing.assert_allclose(np.asarray(grad, np.float64), expected, rtol=1e-5, atol=1e-6)
