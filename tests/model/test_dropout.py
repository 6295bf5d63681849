"""Dropout with 16-bit draws: drop rates within binomial bounds (scipy), uniform draws
(chi-square, scipy), exact rescaling, no repeated counters between rows or calls, and the same
mask whatever the sharding of the array it is drawn for."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from scipy import stats

from bert_jax.model.dropout import Dropout, draws16, drop_threshold

KEY = jax.random.PRNGKey(7)


def apply(rate, x, key=KEY, deterministic=False):
    return Dropout(rate).apply({}, x, deterministic, rngs={"dropout": key})


@pytest.mark.parametrize(
    "shape", [(16, 8, 128, 128), (16, 128, 512), (64, 6, 10), (4, 5, 7)], ids=str
)  # fast path (last axis divisible by 4), and the one-word-per-draw fallbacks
def test_drop_rate_within_binomial_bounds(shape):
    x = jnp.ones(shape)
    dropped = int(np.sum(np.asarray(apply(0.1, x)) == 0))
    n = x.size
    p = drop_threshold(0.1) / 65536
    low, high = stats.binom.interval(1 - 1e-6, n, p)
    assert low <= dropped <= high, (dropped, n * p)


def test_kept_values_are_rescaled_to_keep_the_expectation():
    x = jax.random.normal(jax.random.PRNGKey(1), (32, 64, 256))
    y = np.asarray(apply(0.1, x))
    kept = y != 0
    threshold = drop_threshold(0.1)
    assert threshold == 6554  # round(0.1 * 2^16): a drop rate of 0.1000061
    # To float32 rounding of the product (one ulp).
    np.testing.assert_allclose(
        y[kept], np.asarray(x)[kept] * 65536 / (65536 - threshold), rtol=2.4e-7
    )


def test_identity_when_deterministic_or_rate_zero():
    x = jax.random.normal(jax.random.PRNGKey(2), (4, 8, 16))
    np.testing.assert_array_equal(apply(0.1, x, deterministic=True), x)
    np.testing.assert_array_equal(apply(0.0, x), x)


def test_draws_are_uniform_over_16_bits():
    draws = np.asarray(draws16(KEY, (64, 128, 512))).astype(np.int64)
    # High byte and low byte each uniform over 256 values.
    for part in (draws >> 8, draws & 0xFF):
        counts = np.bincount(part.ravel(), minlength=256)
        assert stats.chisquare(counts).pvalue > 1e-4


def test_rows_and_keys_draw_independent_values():
    draws = np.asarray(draws16(KEY, (4, 64, 1024)))
    # The same offset in different rows: equal only by chance (1 / 65536 of the time).
    for a, b in ((0, 1), (0, 3), (2, 3)):
        assert np.mean(draws[a] == draws[b]) < 1e-3
    other = np.asarray(draws16(jax.random.fold_in(KEY, 1), (4, 64, 1024)))
    assert np.mean(draws == other) < 1e-3
    # The four draws of one threefry block are not copies of each other.
    blocks = draws.reshape(-1, 4)
    assert np.mean(blocks[:, 0] == blocks[:, 1]) < 1e-3
    assert np.mean(blocks[:, 2] == blocks[:, 3]) < 1e-3


def test_typed_and_raw_keys_draw_the_same():
    typed = jax.random.wrap_key_data(KEY)
    np.testing.assert_array_equal(draws16(typed, (8, 64)), draws16(KEY, (8, 64)))


def test_other_key_implementations_fall_back():
    key = jax.random.key(0, impl="rbg")
    draws = draws16(key, (8, 64))
    assert draws.shape == (8, 64) and draws.dtype == jnp.uint16


def test_mask_does_not_depend_on_sharding():
    devices = np.array(jax.devices()[:8]).reshape(2, 4)
    mesh = Mesh(devices, ("data", "model"))
    shape = (8, 16, 64)

    def draw(key):
        return draws16(key, shape)

    single = np.asarray(jax.jit(draw)(KEY))
    for spec in (
        PartitionSpec("data"),
        PartitionSpec("data", "model"),
        PartitionSpec(None, None, "model"),
    ):
        sharded = jax.jit(draw, out_shardings=NamedSharding(mesh, spec))(KEY)
        np.testing.assert_array_equal(np.asarray(sharded), single, err_msg=str(spec))


def test_module_draws_a_fresh_mask_per_call():
    class Twice(nn.Module):
        @nn.compact
        def __call__(self, x):
            drop = Dropout(0.5)
            return drop(x, False), drop(x, False)

    a, b = Twice().apply({}, jnp.ones((4, 256)), rngs={"dropout": KEY})
    assert not np.array_equal(np.asarray(a), np.asarray(b))
