"""Inverted dropout with 16-bit draws: a quarter of the random-number work of `nn.Dropout`.

`nn.Dropout` hashes one threefry block per element (`jax.random.bits` keeps 32 of the block's
64 output bits) and turns it into a float to compare with the keep probability. The hash is the
costly part on CPU: in the pretraining step's profile its masks took 7-10% of the step (JAX's
"rbg" and "unsafe_rbg" keys are no help there: XLA's RngBitGenerator is slower still on CPU).
16 bits per element are plenty to decide keep or drop, so here each threefry2x32 block (two
32-bit words) decides four neighbouring elements: an element is dropped where its 16-bit draw
is below round(rate * 2^16), and kept elements are scaled by the inverse of the keep
probability those 16 bits actually give. The drop rate is thus quantised to 1/65536 (0.1 becomes
0.1000061) and the output's expectation equals the input exactly.

The blocks are counted as JAX's partitionable threefry counts them (a pair of 32-bit counters
per block, here: row of the leading axis, offset within the row), so the mask is a pure
function of the key and the element's position: the same on any mesh, and every device
computes only its own part. Keys of another implementation (`jax_default_prng_impl`) take
`jax.random.bits` at one 16-bit draw per element.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
from jax.extend.random import threefry2x32_p

_LEVELS = 1 << 16  # distinct values of one 16-bit draw
_PER_BLOCK = 4  # 16-bit draws per threefry2x32 block (2 x 32 bits)


def drop_threshold(rate: float) -> int:
    """The 16-bit draws below this value are dropped (at most all but one of the levels, so the
    keep scale stays finite for a rate just under 1)."""
    return min(round(rate * _LEVELS), _LEVELS - 1)


def _raw_threefry(key: jax.Array) -> jax.Array | None:
    """The key's two uint32 words if it is a threefry key (raw or typed), else None."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        key = jax.random.key_data(key)
    return key if key.shape == (2,) and key.dtype == jnp.uint32 else None


def _row_offsets(shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """uint32 counters of every position of `shape`: (index along axis 0, flat offset within
    that row), unique per position."""
    rows = lax.broadcasted_iota(jnp.uint32, shape, 0)
    offsets = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in range(len(shape) - 1, 0, -1):
        offsets = offsets + lax.broadcasted_iota(jnp.uint32, shape, axis) * jnp.uint32(stride)
        stride *= shape[axis]
    return rows, offsets


def draws16(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniform uint16 draws of `shape`, four per threefry2x32 block along the last axis."""
    words = _raw_threefry(key)
    if (
        words is None
        or len(shape) < 2
        or shape[-1] % _PER_BLOCK
        or math.prod(shape[1:]) // _PER_BLOCK >= 1 << 32
    ):
        return jax.random.bits(key, shape, jnp.uint16)
    blocks = (*shape[:-1], shape[-1] // _PER_BLOCK)
    rows, offsets = _row_offsets(blocks)
    high, low = threefry2x32_p.bind(words[0], words[1], rows, offsets)
    pairs = jnp.stack([high, low], axis=-1)  # [..., blocks, 2] uint32
    return lax.bitcast_convert_type(pairs, jnp.uint16).reshape(shape)


class Dropout(nn.Module):
    """Drop each element with probability `rate` (to 1/65536) and scale the rest to keep the
    expectation; the identity when `deterministic` or `rate` is 0. Keys from the "dropout"
    rng collection, as `nn.Dropout`."""

    rate: float

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        threshold = drop_threshold(self.rate)
        if deterministic or threshold == 0:
            return x
        keep = draws16(self.make_rng("dropout"), x.shape) >= threshold
        scale = _LEVELS / (_LEVELS - threshold)  # 1 / P(keep)
        return lax.select(keep, x * jnp.asarray(scale, x.dtype), jnp.zeros_like(x))
