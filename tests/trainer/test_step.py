"""The jitted train step on 8 fake CPU devices: the same step on every mesh equals the
single-device step (dropout included: JAX's random bits do not depend on the sharding);
k micro-batches equal one step on the k-times batch; the donated state is consumed; bf16
compute keeps float32 params and optimizer state."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from bert_jax import sharding
from bert_jax.data import synthetic as synthetic_data
from bert_jax.model.config import BertConfig
from bert_jax.tasks.pretraining import PretrainingTask
from bert_jax.trainer import optim
from bert_jax.trainer import state as train_state
from bert_jax.trainer import step as train_step

CONFIG = BertConfig(vocab_size=64, hidden_size=32, num_layers=1, num_heads=4, intermediate_size=64)
BATCH, SEQ, PREDICTIONS, STEPS = 16, 16, 4, 2
NO_DROPOUT = CONFIG.replace(hidden_dropout=0.0, attention_dropout=0.0)


def mesh_config(**sizes):
    values = dict(data=1, fsdp=1, tensor=1, dcn_data=-1, dcn_fsdp=1, dcn_tensor=1)
    values.update(sizes)
    return ml_collections.ConfigDict(values)


def run(config, sizes, accum=1, steps=STEPS):
    """(params, per-step losses, initial state, final state) after `steps` steps on a mesh."""
    devices = jax.devices()[: int(np.prod(list(sizes.values())))]
    mesh = sharding.make_mesh(mesh_config(**sizes), devices)
    schedule = optax.constant_schedule(1e-2)
    tx = optim.bert_adamw(schedule, weight_decay=0.01)
    model = PretrainingTask(config, SEQ, PREDICTIONS)
    sharded = train_state.plan(train_state.init_fn(model, tx, 0), mesh)
    # The same initial values on every mesh, placed without compiling an init per mesh
    # (sharded creation itself is tested in test_sharding.py).
    initial = state = jax.device_put(initial_state(config), sharded.shardings)
    step = train_step.jit_train_step(
        train_step.make_train_step(model, tx, schedule, mesh, accum,
                                   param_shardings=sharded.shardings.params),
        sharded.shardings,
        mesh,
    )  # fmt: skip
    losses = []
    for i in range(steps):
        host = synthetic_data.global_batch(0, i, BATCH, SEQ, PREDICTIONS, CONFIG.vocab_size)
        state, metrics = step(state, jax.device_put(host, sharding.batch_sharding(mesh)))
        losses.append(float(metrics["loss"]))
    return jax.device_get(state.params), losses, initial, state


@functools.cache
def initial_state(config):
    tx = optim.bert_adamw(optax.constant_schedule(1e-2), weight_decay=0.01)
    init = train_state.init_fn(PretrainingTask(config, SEQ, PREDICTIONS), tx, 0)
    return jax.device_get(jax.jit(lambda: nn.unbox(init()))())


@functools.cache
def single_device(config):
    return run(config, dict(data=1))


def assert_same(a, b, rtol=2e-5, atol=2e-5):
    """Losses to float32 rounding; params to 0.2% of one update (lr 1e-2): Adam divides tiny
    gradients by their own size, which magnifies summation-order noise on a few elements."""
    (params_a, losses_a, *_), (params_b, losses_b, *_) = a, b
    np.testing.assert_allclose(losses_a, losses_b, rtol=rtol)
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(params_a),
                            jax.tree.leaves(params_b), strict=True):  # fmt: skip
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize(
    "sizes",
    [dict(data=8), dict(data=2, fsdp=4), dict(data=2, fsdp=2, tensor=2)],
    ids=["data8", "data2_fsdp4", "data2_fsdp2_tensor2"],
)
@pytest.mark.slow
def test_sharded_step_equals_single_device_step(sizes):
    reference = single_device(CONFIG)
    assert reference[1][1] != reference[1][0]  # the step does train
    assert_same(run(CONFIG, sizes), reference)


def test_micro_batches_equal_one_step_on_the_whole_batch():
    # Without dropout: micro-batches draw their own dropout masks.
    whole = single_device(NO_DROPOUT)
    accumulated = run(NO_DROPOUT, dict(data=2, fsdp=2, tensor=2), accum=2)
    assert_same(accumulated, whole)


def test_state_is_donated_and_stays_float32_under_bfloat16_compute():
    _, _, initial, final = single_device(CONFIG)
    assert initial.params["bert"]["encoder"]["layer_0"]["intermediate"]["kernel"].is_deleted()
    assert int(final.step) == STEPS
    # bf16 compute: the step's output state, worked out abstractly, keeps float32 everywhere.
    mesh = sharding.make_mesh(mesh_config(data=2, fsdp=2, tensor=2))
    model = PretrainingTask(CONFIG.replace(dtype="bfloat16"), SEQ, PREDICTIONS)
    tx = optim.bert_adamw(1e-3)
    sharded = train_state.plan(train_state.init_fn(model, tx, 0), mesh)
    host = synthetic_data.global_batch(0, 0, BATCH, SEQ, PREDICTIONS, CONFIG.vocab_size)
    step = train_step.make_train_step(model, tx, lambda s: 1e-3, mesh)
    with sharding.activate(mesh):
        out_state, metrics = jax.eval_shape(step, sharded.abstract, host)
    floats = [x for x in jax.tree.leaves((out_state.params, out_state.opt_state)) if x.ndim]
    assert floats and all(x.dtype == jnp.float32 for x in floats)
    assert metrics["loss"].dtype == jnp.float32


def test_accumulation_lowers_peak_memory():
    """A scan over micro-batches holds one micro-batch's activations: XLA's own buffer plan
    for the step shrinks with accum_steps (optax.MultiSteps over a full batch would not)."""
    mesh = sharding.make_mesh(mesh_config(data=1), jax.devices()[:1])
    config = NO_DROPOUT
    batch, seq = 32, 64
    model = PretrainingTask(config, seq, PREDICTIONS)
    tx = optim.bert_adamw(1e-3)
    sharded = train_state.plan(train_state.init_fn(model, tx, 0), mesh)
    host = synthetic_data.global_batch(0, 0, batch, seq, PREDICTIONS, config.vocab_size)
    batch_spec = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding.batch_sharding(mesh)),
        host,
    )
    temp = {}
    for accum in (1, 4):
        step = train_step.jit_train_step(
            train_step.make_train_step(model, tx, lambda s: 1e-3, mesh, accum),
            sharded.shardings,
            mesh,
        )
        memory = step.lower(sharded.abstract, batch_spec).compile().memory_analysis()
        temp[accum] = memory.temp_size_in_bytes
    print("temp bytes by accum_steps:", temp)
    assert temp[4] < 0.5 * temp[1], temp
