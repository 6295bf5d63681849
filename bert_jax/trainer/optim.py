"""Optimizers and learning-rate schedules for pretraining, from the `optimizer` config section.

  bert_adamw  the original `AdamWeightDecayOptimizer`: Adam moments WITHOUT bias correction,
              eps 1e-6 added to sqrt(v), decoupled weight decay, lr applied to both
  adamw       optax.adamw (bias-corrected)
  lamb        LAMB as the reference implementations run it (layer-wise trust ratio)

All three skip weight decay on LayerNorm parameters and biases, and clip the gradient's global
norm first. Schedules: `linear` is BERT's (linear warmup, then polynomial decay computed from
step 0, so the rate drops slightly at the end of warmup), `cosine`, and `wsd`
(warmup-stable-decay).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from bert_jax.errors import UserError


def decay_mask(params):
    """True where weight decay applies: kernels and embedding tables; False for LayerNorm
    scale/bias and every bias (original BERT excludes names containing LayerNorm or bias).

    Decided by the parameter's own name, so it holds for scanned stacks (where a bias is 2-D)
    and for boxed (`nn.LogicallyPartitioned`) trees alike.
    """

    def decays(path, _):
        name = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)][-1]
        return not (name == "scale" or name.endswith("bias"))

    return jax.tree_util.tree_map_with_path(decays, params)


class BertAdamState(NamedTuple):
    mu: optax.Updates
    nu: optax.Updates


def scale_by_bert_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6):
    """m/(sqrt(v)+eps) with uncorrected moments, as google-research/bert `optimization.py`.

    optax.scale_by_adam always divides by (1 - b^t); the original never did, which makes its
    early steps smaller (m starts at (1-b1) g) and is part of the released recipe.
    """

    def init(params):
        zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
        return BertAdamState(mu=zeros, nu=zeros)

    def update(updates, state, params=None):
        del params
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), state.nu, updates)
        out = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu, nu)
        return out, BertAdamState(mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """Scale every gradient by max_norm / max(global norm, max_norm), as TF's
    `clip_by_global_norm` (BERT's) does. optax's version divides each element by the norm
    instead; XLA does not repeat a division inside each consumer, so that wrote a clipped copy of
    every gradient (a full extra pass over the 30522 x H embedding table per step). A multiply
    by one scalar fuses into the moment updates that read the gradient anyway."""

    def update(updates, state, params=None):
        del params
        norm = optax.global_norm(updates)
        scale = max_norm / jnp.maximum(norm, max_norm)
        return jax.tree.map(lambda g: g * scale.astype(g.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def bert_adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01, mask=decay_mask):
    """The original AdamWeightDecayOptimizer: p -= lr * (m/(sqrt(v)+eps) + wd * p)."""
    return optax.chain(
        scale_by_bert_adam(b1, b2, eps),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )


def lamb(learning_rate, b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01, mask=decay_mask):
    """LAMB: bias-corrected Adam direction u (+ wd * p where `mask`), scaled per parameter by the
    trust ratio ||p|| / ||u|| (1 where either norm is 0), then by the learning rate.

    Parameters exempt from weight decay (LayerNorm, biases) also skip the trust ratio (ratio 1),
    as in the reference LAMBs: Google's `LAMBOptimizer` (exclude_from_layer_adaptation defaults
    to exclude_from_weight_decay) and NVIDIA's FusedLAMB (use_nvlamb=False: no adaptation where
    weight decay is 0). optax.lamb applies the ratio to every parameter, which drives tiny
    vectors like LayerNorm biases (norm near 0) to a near-zero step.
    """
    return optax.chain(
        optax.scale_by_adam(b1, b2, eps),
        optax.add_decayed_weights(weight_decay, mask),
        optax.masked(optax.scale_by_trust_ratio(), mask),
        optax.scale_by_learning_rate(learning_rate),
    )


def _adamw(schedule, o):
    return optax.adamw(schedule, o.b1, o.b2, o.eps, weight_decay=o.weight_decay, mask=decay_mask)


def _bert_adamw(schedule, o):
    return bert_adamw(schedule, o.b1, o.b2, o.eps, o.weight_decay, decay_mask)


def _lamb(schedule, o):
    return lamb(schedule, o.b1, o.b2, o.eps, o.weight_decay, decay_mask)


OPTIMIZERS = {"bert_adamw": _bert_adamw, "adamw": _adamw, "lamb": _lamb}


# ---------------------------------------------------------------------------------------------
# Schedules


def bert_linear_schedule(peak, warmup_steps, num_steps, power=1.0, end=0.0):
    """BERT's schedule: peak * step/warmup during warmup, then
    (peak - end) * (1 - step/num_steps)^power + end with step counted from 0, not from the end
    of warmup (as `tf.train.polynomial_decay` on the global step in the original)."""
    decay = optax.polynomial_schedule(peak, end, power, num_steps)

    def schedule(step):
        warm = peak * step / max(warmup_steps, 1)
        return jnp.where(step < warmup_steps, warm, decay(step))

    return schedule


def warmup_stable_decay_schedule(peak, warmup_steps, num_steps, decay_fraction, end=0.0):
    """Linear warmup, constant peak, linear decay to `end` over the last `decay_fraction`."""
    decay_steps = max(1, int(round(num_steps * decay_fraction)))
    stable_end = max(warmup_steps, num_steps - decay_steps)
    return optax.join_schedules(
        [
            optax.linear_schedule(0.0, peak, max(warmup_steps, 1)),
            optax.constant_schedule(peak),
            optax.linear_schedule(peak, end, decay_steps),
        ],
        [warmup_steps, stable_end],
    )


def warmup_steps(o, num_steps: int) -> int:
    """optimizer.warmup_fraction of the run's steps when set (fine-tuning: 10%), else
    optimizer.warmup_steps."""
    fraction = o.get("warmup_fraction", 0.0) or 0.0
    if not 0.0 <= fraction <= 1.0:
        raise UserError(f"optimizer.warmup_fraction {fraction} must be in [0, 1]")
    if fraction:
        return int(round(fraction * num_steps))
    if o.warmup_steps < 0 or o.warmup_steps > num_steps:
        raise UserError(
            f"optimizer.warmup_steps {o.warmup_steps} must be in [0, train.num_steps {num_steps}]"
        )
    return int(o.warmup_steps)


def make_schedule(o, num_steps: int):
    warmup = warmup_steps(o, num_steps)
    if o.schedule == "linear":
        return bert_linear_schedule(
            o.learning_rate, warmup, num_steps, o.decay_power, o.end_learning_rate
        )
    if o.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, o.learning_rate, warmup, num_steps, o.end_learning_rate
        )
    if o.schedule == "wsd":
        if not 0.0 < o.decay_fraction <= 1.0:
            raise UserError(f"optimizer.decay_fraction {o.decay_fraction} must be in (0, 1]")
        return warmup_stable_decay_schedule(
            o.learning_rate, warmup, num_steps, o.decay_fraction, o.end_learning_rate
        )
    raise UserError(f"optimizer.schedule {o.schedule!r} is not one of linear, cosine, wsd")


def make_optimizer(o, num_steps: int):
    """(transformation, schedule) from the `optimizer` config section."""
    if o.name not in OPTIMIZERS:
        raise UserError(f"optimizer.name {o.name!r} is not one of {', '.join(OPTIMIZERS)}")
    schedule = make_schedule(o, num_steps)
    tx = OPTIMIZERS[o.name](schedule, o)
    if o.clip_norm:
        tx = optax.chain(clip_by_global_norm(o.clip_norm), tx)
    return tx, schedule
