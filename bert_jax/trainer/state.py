"""TrainState and its creation directly in its sharded layout.

  abstract = jax.eval_shape(init)                 shapes and logical axis names, no memory
  shardings = rules(abstract)                     one NamedSharding per array
  state = jax.jit(init, out_shardings=shardings)  every device makes only its own pieces

so the full parameter set never exists on one device (random init is partitionable: JAX's
threefry is computed per shard).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from bert_jax import sharding


@struct.dataclass
class TrainState:
    """Everything a step reads and writes; a pytree of arrays (what a checkpoint holds)."""

    step: jax.Array  # int32 scalar: optimizer steps taken
    params: Any
    opt_state: Any
    rng: jax.Array  # raw uint32 [2] key; each step folds in its step number


class ShardedInit(NamedTuple):
    """What `plan` works out before anything is computed."""

    init: Any  # () -> TrainState with boxed (nn.LogicallyPartitioned) params
    shardings: TrainState  # NamedSharding for every array of the state
    abstract: TrainState  # jax.ShapeDtypeStruct leaves carrying their .sharding


def init_fn(task, tx, seed: int):
    """() -> TrainState: the task model's params from `seed` (shapes from its example batch),
    optimizer state, and the dropout key."""

    def init() -> TrainState:
        params_rng, dropout_rng = jax.random.split(jax.random.PRNGKey(seed))
        params = task.init_params(params_rng, task.example_batch())
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            rng=dropout_rng,
        )

    return init


def plan(init, mesh, rules=None) -> ShardedInit:
    """Shardings and abstract state from the logical names of the boxed init; checks that every
    split dimension divides by its mesh axes (one-line error before compiling)."""
    boxed = jax.eval_shape(init)
    logical = nn.get_partition_spec(boxed)
    shardings = sharding.logical_to_sharding(logical, mesh, rules)
    shapes = nn.unbox(boxed)
    sharding.check_divisible(shapes, shardings)
    abstract = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings
    )
    return ShardedInit(init, shardings, abstract)


def create(sharded: ShardedInit) -> TrainState:
    """The state, computed shard by shard on the devices that hold it."""
    # No mesh in scope here: Flax's DenseGeneral reshapes boxed kernels during init, and a
    # sharding constraint on the flat kernel would fail. out_shardings alone places every piece.
    return jax.jit(lambda: nn.unbox(sharded.init()), out_shardings=sharded.shardings)()


def param_count(params) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(params))
