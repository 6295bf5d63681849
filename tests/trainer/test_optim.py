"""Optimizers and schedules: the original BERT AdamWeightDecayOptimizer step against a numpy
transcription of google-research/bert `optimization.py`, the decay mask on the real model,
and the schedules at the steps where their formulas change."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig
from bert_jax.model.heads import BertForPreTraining
from bert_jax.trainer import optim


def optimizer_config(**overrides):
    values = dict(
        name="bert_adamw", learning_rate=1e-2, b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01,
        clip_norm=1.0, schedule="linear", warmup_steps=2, decay_power=1.0,
        end_learning_rate=0.0, decay_fraction=0.1,
    )  # fmt: skip
    values.update(overrides)
    return ml_collections.ConfigDict(values)


def toy_params(rng):
    return {
        "dense": {"kernel": rng.normal(size=(3, 4)), "bias": rng.normal(size=4)},
        "LayerNorm": {"scale": rng.normal(size=4), "bias": rng.normal(size=4)},
        "word_embeddings": {"embedding": rng.normal(size=(5, 4))},
        "mlm_output_bias": rng.normal(size=5),
    }


def reference_bert_adam(params, grads_per_step, lr0, warmup, total, wd=0.01, eps=1e-6):
    """AdamWeightDecayOptimizer + create_optimizer of the original, in numpy (float64)."""
    flat = {k: np.array(v, np.float64) for k, v in _flatten(params).items()}
    m = {k: np.zeros_like(v) for k, v in flat.items()}
    v_ = {k: np.zeros_like(v) for k, v in flat.items()}
    for step, grads in enumerate(grads_per_step):
        decayed = lr0 * (1 - min(step, total) / total)  # polynomial_decay, power 1, from step 0
        lr = lr0 * step / warmup if step < warmup else decayed
        g = {k: np.array(x, np.float64) for k, x in _flatten(grads).items()}
        norm = np.sqrt(sum((x**2).sum() for x in g.values()))
        g = {k: x * 1.0 / max(norm, 1.0) for k, x in g.items()}  # tf.clip_by_global_norm(1.0)
        for k in flat:
            m[k] = 0.9 * m[k] + 0.1 * g[k]
            v_[k] = 0.999 * v_[k] + 0.001 * g[k] ** 2
            update = m[k] / (np.sqrt(v_[k]) + eps)
            if not any(word in k for word in ("LayerNorm", "layer_norm", "bias")):
                update += wd * flat[k]
            flat[k] = flat[k] - lr * update
    return flat


def _flatten(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_bert_adamw_matches_the_original_update_without_bias_correction():
    rng = np.random.default_rng(0)
    params = toy_params(rng)
    grads = [jax.tree.map(lambda p: rng.normal(size=np.shape(p)) * 3.0, params) for _ in range(4)]
    tx, _ = optim.make_optimizer(optimizer_config(), num_steps=10)
    current = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    state = tx.init(current)
    for g in grads:
        updates, state = tx.update(jax.tree.map(jnp.float32, g), state, current)
        current = optax.apply_updates(current, updates)
    expected = reference_bert_adam(params, grads, 1e-2, warmup=2, total=10)
    for key, value in _flatten(jax.device_get(current)).items():
        np.testing.assert_allclose(value, expected[key], rtol=2e-5, atol=1e-6, err_msg=key)


def test_lamb_step_skips_the_trust_ratio_where_weight_decay_does_not_apply():
    """One LAMB step by hand, as NVIDIA's FusedLAMB (bias correction, use_nvlamb=False) and
    Google's LAMBOptimizer compute it: kernels and tables move by lr * ||p|| / ||u|| * u, while
    LayerNorm parameters and biases (no weight decay) move by lr * u: trust ratio 1."""
    rng = np.random.default_rng(2)
    params, b1, b2, eps, wd, lr = toy_params(rng), 0.9, 0.999, 1e-6, 0.01, 1e-2
    grads = jax.tree.map(lambda p: rng.normal(size=np.shape(p)), params)
    expected = {}
    for key, p in _flatten(params).items():
        g = _flatten(grads)[key]
        m_hat = (1 - b1) * g / (1 - b1)  # the first step's bias-corrected moments
        v_hat = (1 - b2) * g**2 / (1 - b2)
        u = m_hat / (np.sqrt(v_hat) + eps)
        decays = not any(word in key for word in ("LayerNorm", "bias"))
        if decays:
            u = u + wd * p
        ratio = np.linalg.norm(p) / np.linalg.norm(u) if decays else 1.0
        expected[key] = p - lr * ratio * u
    config = optimizer_config(name="lamb", clip_norm=0.0, schedule="wsd", warmup_steps=0,
                              decay_fraction=1.0, learning_rate=lr)  # fmt: skip
    tx, _ = optim.make_optimizer(config, num_steps=1000)
    current = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    updates, _ = tx.update(jax.tree.map(jnp.float32, grads), tx.init(current), current)
    for key, value in _flatten(jax.device_get(optax.apply_updates(current, updates))).items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_decay_mask_exempts_layernorm_and_biases_in_unrolled_and_scanned_models():
    config = BertConfig(vocab_size=64, hidden_size=32, num_layers=2, num_heads=4,
                        intermediate_size=64)  # fmt: skip
    ids = jnp.zeros((1, 8), jnp.int32)
    for scan in (False, True):
        model = BertForPreTraining(config.replace(scan_layers=scan))
        init = model.init
        variables = jax.eval_shape(lambda: init(jax.random.PRNGKey(0), ids, ids, ids, ids[:, :2]))  # noqa: B023
        params = nn.unbox(variables)["params"]
        mask = optim.decay_mask(params)
        for path, decays in jax.tree_util.tree_leaves_with_path(mask):
            name = path[-1].key
            exempt = name in ("scale", "bias") or name == "mlm_output_bias"
            assert decays == (not exempt), jax.tree_util.keystr(path)
        assert mask["bert"]["embeddings"]["word_embeddings"]["embedding"]


@pytest.mark.parametrize("name", ["bert_adamw", "adamw", "lamb"])
def test_weight_decay_moves_kernels_but_not_layernorm_or_biases(name):
    params = jax.tree.map(jnp.asarray, toy_params(np.random.default_rng(1)))
    tx, _ = optim.make_optimizer(optimizer_config(name=name, weight_decay=0.1), num_steps=10)
    state = tx.init(params)
    zero = jax.tree.map(jnp.zeros_like, params)
    for _ in range(3):  # step 0 has learning rate 0 (warmup)
        updates, state = tx.update(zero, state, params)
        params_after = optax.apply_updates(params, updates)
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), params, params_after)
    assert moved["dense"]["kernel"] and moved["word_embeddings"]["embedding"]
    assert not moved["dense"]["bias"] and not moved["mlm_output_bias"]
    assert not moved["LayerNorm"]["scale"] and not moved["LayerNorm"]["bias"]


def test_bert_linear_schedule_warms_up_then_decays_from_step_zero():
    s = optim.make_schedule(optimizer_config(learning_rate=1e-4, warmup_steps=10), 100)
    values = {step: float(s(step)) for step in (0, 5, 9, 10, 50, 100, 150)}
    expected = {0: 0.0, 5: 5e-5, 9: 9e-5, 10: 9e-5, 50: 5e-5, 100: 0.0, 150: 0.0}
    for step, value in expected.items():
        np.testing.assert_allclose(values[step], value, atol=1e-12, err_msg=str(step))
    squared = optim.make_schedule(optimizer_config(learning_rate=1e-4, warmup_steps=10,
                                                   decay_power=2.0), 100)  # fmt: skip
    np.testing.assert_allclose(float(squared(50)), 1e-4 * 0.25, rtol=1e-6)


def test_cosine_and_warmup_stable_decay_schedules():
    cosine = optim.make_schedule(
        optimizer_config(schedule="cosine", learning_rate=1.0, warmup_steps=10,
                         end_learning_rate=0.1), 110)  # fmt: skip
    np.testing.assert_allclose([float(cosine(k)) for k in (0, 5, 10, 60, 110)],
                               [0.0, 0.5, 1.0, 0.55, 0.1], atol=1e-6)  # fmt: skip
    wsd = optim.make_schedule(
        optimizer_config(schedule="wsd", learning_rate=1.0, warmup_steps=10, decay_fraction=0.2),
        100,
    )
    np.testing.assert_allclose([float(wsd(k)) for k in (0, 5, 10, 50, 80, 90, 100)],
                               [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0], atol=1e-6)  # fmt: skip


def test_bad_optimizer_settings_are_one_line_errors():
    with pytest.raises(UserError, match="optimizer.name 'sgdd' is not one of"):
        optim.make_optimizer(optimizer_config(name="sgdd"), 10)
    with pytest.raises(UserError, match="optimizer.schedule 'step'"):
        optim.make_optimizer(optimizer_config(schedule="step"), 10)
    with pytest.raises(UserError, match=r"warmup_steps 20 must be in \[0, train.num_steps 10\]"):
        optim.make_optimizer(optimizer_config(warmup_steps=20), 10)


@pytest.mark.parametrize("scale", [0.01, 10.0], ids=["below_max", "above_max"])
def test_clip_by_global_norm_matches_optax_and_tf(scale):
    """TF's (and BERT's) t * max_norm / max(norm, max_norm), equal to optax's version to float32
    rounding; the optimizer state keeps optax's (empty) structure, so checkpoints match."""
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    grads = {
        "a": jax.random.normal(keys[0], (30, 7)) * scale,
        "b": {"c": jax.random.normal(keys[1], (11,)) * scale},
    }
    ours = optim.clip_by_global_norm(1.0)
    reference = optax.clip_by_global_norm(1.0)
    clipped, state = ours.update(grads, ours.init(grads))
    expected, _ = reference.update(grads, reference.init(grads))
    for a, b in zip(jax.tree.leaves(clipped), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    norm = float(optax.global_norm(grads))
    np.testing.assert_allclose(float(optax.global_norm(clipped)), min(norm, 1.0), rtol=1e-6)
    assert jax.tree.structure(state) == jax.tree.structure(reference.init(grads))
