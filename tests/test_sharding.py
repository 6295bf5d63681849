"""Sharding policy on 8 fake CPU devices: the mesh from config (and its one-line errors),
every parameter and optimizer moment placed as the rules table says, checked against a table
written out here by hand (not recomputed with Flax's rule machinery), and the assembly of
global batches from the rows each process supplies."""

import re
import types

import jax
import ml_collections
import numpy as np
import pytest

from bert_jax import sharding
from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig
from bert_jax.tasks.pretraining import PretrainingTask
from bert_jax.trainer import optim
from bert_jax.trainer import state as train_state

TINY = BertConfig(vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64)

# Parameter path (regex on "a/b/c") -> mesh axes per dimension, by hand from the rules:
# embed->fsdp, vocab/heads/mlp/embed_out->tensor, everything else whole.
EXPECTED = [
    (r"word_embeddings/embedding$", ("tensor", "fsdp")),
    (r"(position|token_type)_embeddings/embedding$", (None, "fsdp")),
    (r"(LayerNorm|attention_norm|output_norm|mlm_norm)/(scale|bias)$", (None,)),
    (r"attention/(query|key|value)/kernel$", ("fsdp", "tensor", None)),
    (r"attention/(query|key|value)/bias$", ("tensor", None)),
    (r"attention/output/kernel$", ("tensor", None, "fsdp")),
    (r"attention/output/bias$", ("fsdp",)),
    (r"intermediate/kernel$", ("fsdp", "tensor")),
    (r"intermediate/bias$", ("tensor",)),
    (r"layer_\d+/output/kernel$", ("tensor", "fsdp")),
    (r"layer_\d+/output/bias$", ("fsdp",)),
    (r"(pooler/dense|mlm_transform)/kernel$", ("fsdp", "tensor")),
    (r"(pooler/dense|mlm_transform)/bias$", ("tensor",)),
    (r"mlm_output_bias$", ("tensor",)),
    (r"nsp/kernel$", ("fsdp", None)),
    (r"nsp/bias$", (None,)),
]

MESHES = [
    dict(data=8, fsdp=1, tensor=1),
    dict(data=2, fsdp=4, tensor=1),
    dict(data=2, fsdp=2, tensor=2),
]


def mesh_config(**sizes):
    values = dict(data=-1, fsdp=1, tensor=1, dcn_data=-1, dcn_fsdp=1, dcn_tensor=1)
    values.update(sizes)
    return ml_collections.ConfigDict(values)


def expected_axes(path: str):
    matches = [axes for pattern, axes in EXPECTED if re.search(pattern, path)]
    assert len(matches) == 1, f"{path} matches {len(matches)} expectations"
    return matches[0]


def path_str(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def sharded_state(mesh):
    init = train_state.init_fn(PretrainingTask(TINY, 16, 4), optim.bert_adamw(1e-3), 0)
    return train_state.create(train_state.plan(init, mesh))


@pytest.mark.parametrize("sizes", MESHES, ids=lambda s: "x".join(f"{k}{v}" for k, v in s.items()))
def test_every_param_and_moment_is_placed_as_the_rules_say(sizes):
    mesh = sharding.make_mesh(mesh_config(**sizes))
    assert dict(mesh.shape) == sizes
    state = sharded_state(mesh)
    moments = state.opt_state[0]  # BertAdamState(mu, nu)
    for tree in (state.params, moments.mu, moments.nu):
        leaves = jax.tree_util.tree_leaves_with_path(tree)
        assert len(leaves) > 30
        for path, array in leaves:
            axes = expected_axes(path_str(path))
            assert tuple(array.sharding.spec) == axes, path_str(path)
            # The piece each device holds: every named axis splits its dimension.
            split = [sizes[a] if a else 1 for a in axes]
            local = tuple(d // s for d, s in zip(array.shape, split, strict=True))
            assert array.addressable_shards[0].data.shape == local, path_str(path)
    assert state.step.sharding.is_fully_replicated and state.rng.sharding.is_fully_replicated


def test_mesh_fills_the_minus_one_axis():
    assert dict(sharding.make_mesh(mesh_config(data=-1, fsdp=2)).shape) == dict(
        data=4, fsdp=2, tensor=1
    )
    assert dict(sharding.make_mesh(mesh_config(data=1, fsdp=-1, tensor=2)).shape) == dict(
        data=1, fsdp=4, tensor=2
    )


@pytest.mark.parametrize(
    "sizes, message",
    [
        (
            dict(data=3, fsdp=1, tensor=2),
            "mesh data=3 x fsdp=1 x tensor=2 = 6 does not match 8 devices",
        ),
        (dict(data=-1, fsdp=3), "the fixed axes (3) do not divide 8 devices"),
        (dict(data=-1, fsdp=-1), "more than one -1"),
        (dict(data=0, fsdp=8), "must be positive or -1"),
    ],
)
def test_bad_mesh_is_one_line_naming_the_numbers(sizes, message):
    with pytest.raises(UserError) as e:
        sharding.make_mesh(mesh_config(**sizes))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_slices_go_to_the_dcn_axes():
    devices = [types.SimpleNamespace(slice_index=i // 4, platform="tpu") for i in range(8)]
    ici, dcn = sharding.mesh_shape(mesh_config(data=-1, fsdp=2), devices)
    assert ici == dict(data=2, fsdp=2, tensor=1) and dcn == dict(data=2, fsdp=1, tensor=1)
    with pytest.raises(UserError, match="dcn mesh data=1 x fsdp=3 x tensor=1 = 3 does not match 2"):
        sharding.mesh_shape(mesh_config(dcn_data=1, dcn_fsdp=3), devices)


def test_batch_must_split_over_shards_and_micro_batches():
    mesh = sharding.make_mesh(mesh_config(data=2, fsdp=2, tensor=2))
    sharding.check_batch(8, 2, mesh)
    with pytest.raises(UserError, match="global batch 30 is not divisible by 4 batch shards"):
        sharding.check_batch(30, 1, mesh)
    with pytest.raises(UserError, match=r"global batch 6 \(batch_size 12 / accum_steps 2\)"):
        sharding.check_batch(12, 2, mesh)
    with pytest.raises(UserError, match="batch_size 12 is not divisible by train.accum_steps 5"):
        sharding.check_batch(12, 5, mesh)


def test_a_dimension_the_mesh_cannot_split_is_named_before_compiling():
    mesh = sharding.make_mesh(mesh_config(data=2, fsdp=1, tensor=4))
    odd_vocab = TINY.replace(vocab_size=30)
    init = train_state.init_fn(PretrainingTask(odd_vocab, 16, 4), optim.bert_adamw(1e-3), 0)
    with pytest.raises(UserError) as e:
        train_state.plan(init, mesh)
    message = str(e.value)
    assert "dimension 0 of size 30 does not divide by mesh tensor=4" in message
    assert "word_embeddings" in message or "mlm_output_bias" in message


def test_batch_sharding_splits_rows_over_data_and_fsdp():
    mesh = sharding.make_mesh(mesh_config(data=2, fsdp=2, tensor=2))
    layout = sharding.batch_sharding(mesh)
    x = jax.device_put(np.arange(8 * 3).reshape(8, 3), layout)
    assert {s.data.shape for s in x.addressable_shards} == {(2, 3)}
    assert sharding.batch_shards(mesh) == 4


def test_to_global_batch_puts_each_host_block_on_its_batch_shard():
    from jax.sharding import Mesh

    mesh = Mesh(np.array(jax.devices()[:8]).reshape(4, 2, 1), sharding.MESH_AXES)
    feed = sharding.host_feed(mesh)
    assert (feed.group, feed.groups, feed.shards) == (0, 1, tuple(range(8)))
    host = {
        "input_ids": np.arange(16 * 4, dtype=np.int32).reshape(16, 4),
        "nsp_label": np.arange(16, dtype=np.int32),
    }
    out = sharding.to_global_batch(host, feed)
    assert out["input_ids"].sharding.spec == jax.sharding.PartitionSpec(("data", "fsdp"))
    np.testing.assert_array_equal(np.asarray(out["input_ids"]), host["input_ids"])
    assert {s.data.shape[0] for s in out["nsp_label"].addressable_shards} == {2}
    with pytest.raises(UserError, match="host batch of 12 rows .x. does not split over the 8"):
        sharding.to_global_batch({"x": np.zeros((12, 2))}, feed)


def test_a_process_supplies_the_rows_of_the_shards_its_devices_hold():
    """Shards 1 and 3 of 4 on this process (as a device order can lay them): its host batch is
    global rows 2-3 and 6-7, and block j of it lands on shard j of its own."""
    from jax.sharding import Mesh

    feed = sharding.HostFeed(
        mesh=Mesh(np.array(jax.devices()[:8]).reshape(4, 1, 2), sharding.MESH_AXES),
        group=1, groups=2, shards=(1, 3), num_shards=4, process_count=2,
    )  # fmt: skip
    np.testing.assert_array_equal(feed.rows(8), [2, 3, 6, 7])


def test_processes_sharing_batch_shards_form_one_input_group():
    layout = "mesh data=2 x fsdp=1 x tensor=4 over 2 processes x 4 devices"
    # tensor=8 on 4-device hosts: one shard on both processes -> one group, one stream.
    assert sharding.group_processes({0: {0}, 1: {0}}, layout) == [(0,)]
    assert sharding.group_processes({0: {2, 3}, 1: {0, 1}}, layout) == [(0, 1), (2, 3)]
    # Four hosts, two per shard pair: groups ordered by their first shard.
    held = {0: {1, 3}, 1: {0, 2}, 2: {1, 3}, 3: {0, 2}}
    assert sharding.group_processes(held, layout) == [(0, 2), (1, 3)]


@pytest.mark.parametrize(
    "held, message",
    [
        (
            {0: {0, 1}, 1: {1, 2}},
            r"process 0 holds batch shards \[0, 1\] and process 1 holds \[1, 2\]",
        ),
        ({0: {0, 1, 2}, 1: {3}}, r"unequal numbers of batch shards \(\[0, 1, 2\], \[3\]\)"),
    ],
)
def test_a_layout_no_input_split_can_feed_is_one_line_naming_mesh_and_hosts(held, message):
    layout = "mesh data=4 x fsdp=1 x tensor=2 over 2 processes x 4 devices"
    with pytest.raises(UserError, match=message) as e:
        sharding.group_processes(held, layout)
    assert str(e.value).startswith(layout) and "\n" not in str(e.value)
