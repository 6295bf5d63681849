"""Scanned <-> unrolled params: the stacked layer axis holds exactly the unrolled layers in
order, the tree is the one a scanned model initialises, and the round trip is lossless.
(That a scanned and an unrolled model compute the same on converted params is checked against
transformers in test_hf.py::test_parity_with_transformers.)"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bert_jax.errors import UserError
from bert_jax.interop import hf, layout
from bert_jax.model.heads import BertForPreTraining
from tests.interop.reference import tiny_config


@pytest.fixture(scope="module")
def unrolled(hf_state):
    params, _ = hf.import_entries(hf.entries_from_state_dict(hf_state, "ref"), tiny_config(), "ref")
    return params


def test_scan_stacks_the_unrolled_layers(unrolled):
    config = tiny_config()
    scanned = layout.scan_layers(unrolled)
    stacked = scanned["bert"]["encoder"]["layers"]
    for i in range(config.num_layers):
        jax.tree.map(
            lambda s, u, i=i: np.testing.assert_array_equal(s[i], u),
            stacked,
            unrolled["bert"]["encoder"][f"layer_{i}"],
        )
    model = BertForPreTraining(config.replace(scan_layers=True))
    abstract = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4), int)))
    assert jax.tree.map(np.shape, scanned) == jax.tree.map(np.shape, nn.unbox(abstract["params"]))
    assert layout.is_scanned(scanned) and not layout.is_scanned(unrolled)
    assert layout.num_layers(scanned) == layout.num_layers(unrolled) == config.num_layers


def test_round_trip_is_lossless_and_idempotent(unrolled):
    scanned = layout.scan_layers(unrolled)
    jax.tree.map(np.testing.assert_array_equal, layout.unscan_layers(scanned), unrolled)
    jax.tree.map(np.testing.assert_array_equal, layout.scan_layers(scanned), scanned)
    jax.tree.map(np.testing.assert_array_equal, layout.unscan_layers(unrolled), unrolled)
    jax.tree.map(np.testing.assert_array_equal, layout.to_layout(unrolled, True), scanned)


def test_bare_encoder_tree_and_boxed_params(unrolled):
    boxed = jax.tree.map(lambda x: nn.LogicallyPartitioned(x, ("a",) * x.ndim), unrolled)
    scanned = layout.scan_layers(boxed["bert"])  # a BertModel tree; boxes are unwrapped
    assert scanned["encoder"]["layers"]["intermediate"]["kernel"].shape == (3, 64, 128)
    assert "pooler" in scanned and "embeddings" in scanned


def test_gaps_in_layer_numbers_are_an_error(unrolled):
    params = {"bert": {"encoder": dict(unrolled["bert"]["encoder"])}}
    del params["bert"]["encoder"]["layer_1"]
    with pytest.raises(UserError, match=r"encoder layers \[0, 2\] are not numbered 0..1"):
        layout.scan_layers(params)
