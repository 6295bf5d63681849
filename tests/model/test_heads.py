"""The pretraining head's output bias: its hand-written gradient (a matmul with ones) equals
autodiff of a plain broadcast add."""

import jax
import jax.numpy as jnp
import numpy as np

from bert_jax.model.heads import add_output_bias


def test_output_bias_gradient_equals_autodiff_of_the_plain_add():
    logits = jax.random.normal(jax.random.PRNGKey(0), (4, 5, 97))
    bias = jax.random.normal(jax.random.PRNGKey(1), (97,))
    weights = jax.random.normal(jax.random.PRNGKey(2), (4, 5, 97))

    def loss(add):
        return lambda x, b: jnp.sum(jnp.tanh(add(x, b)) * weights)

    ours = jax.grad(loss(add_output_bias), argnums=(0, 1))(logits, bias)
    plain = jax.grad(loss(lambda x, b: x + b), argnums=(0, 1))(logits, bias)
    np.testing.assert_allclose(add_output_bias(logits, bias), logits + bias)
    for a, b in zip(ours, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
