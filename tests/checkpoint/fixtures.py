"""Small train states for the checkpoint tests: the real model and optax.adamw, sharded over a
mesh of the 8 fake CPU devices with a short rules table of their own (independent of the
trainer's partitioning, so these tests prove the checkpoint code alone)."""

from __future__ import annotations

import functools
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh

from bert_jax.model.config import BertConfig
from bert_jax.model.heads import BertForPreTraining
from bert_jax.trainer.state import TrainState

TINY = BertConfig(
    vocab_size=64,
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    intermediate_size=64,
    max_position_embeddings=16,
)
RULES = (
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("heads", "tensor"),
    ("mlp", "tensor"),
    ("embed_out", "tensor"),
)
LENGTH = 8


def mesh(data: int, fsdp: int, tensor: int) -> Mesh:
    devices = np.array(jax.devices()[: data * fsdp * tensor]).reshape(data, fsdp, tensor)
    return Mesh(devices, ("data", "fsdp", "tensor"))


def init_fn(model: nn.Module, seed: int = 0):
    """() -> TrainState with boxed params (and boxed optimizer moments)."""

    def init():
        params_rng, dropout_rng = jax.random.split(jax.random.PRNGKey(seed))
        ids = jnp.zeros((1, LENGTH), jnp.int32)
        params = model.init({"params": params_rng}, ids, ids, ids)["params"]
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=optax.adamw(1e-3).init(params),
            rng=dropout_rng,
        )

    return init


def abstract_state(model: nn.Module, on: Mesh):
    """The unboxed state as ShapeDtypeStructs carrying their shardings on `on`."""
    boxed = jax.eval_shape(init_fn(model))
    shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(boxed), on, RULES)
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), nn.unbox(boxed), shardings
    )


@functools.cache
def _initial_and_nudged(model: nn.Module):
    """seed -> the state after one AdamW update (moments not zero); compiled once per model."""
    tx = optax.adamw(1e-3)

    @jax.jit
    def build(seed):
        params_rng, dropout_rng = jax.random.split(jax.random.PRNGKey(seed))
        ids = jnp.zeros((1, LENGTH), jnp.int32)
        params = nn.unbox(model.init({"params": params_rng}, ids, ids, ids)["params"])
        grads = jax.tree.map(lambda p: jnp.cos(p) + 0.5, params)
        updates, opt_state = tx.update(grads, tx.init(params), params)
        return TrainState(
            step=jnp.ones((), jnp.int32),
            params=optax.apply_updates(params, updates),
            opt_state=opt_state,
            rng=dropout_rng,
        )

    return build


@functools.cache
def _host_state(model: nn.Module, seed: int):
    return host(_initial_and_nudged(model)(seed))


def make_state(model: nn.Module, on: Mesh, seed: int = 0):
    """A real state, sharded on `on` (the same values whatever the mesh)."""
    shardings = shardings_of(abstract_state(model, on))
    return jax.device_put(_host_state(model, seed), shardings)


def random_state(model: nn.Module, seed: int = 0):
    """A state of the model's structure filled with random values, built on the host with no
    compilation: for tests that move values around rather than train."""
    rng = np.random.default_rng(seed)

    def fill(leaf):
        if np.issubdtype(leaf.dtype, np.floating):
            return rng.normal(size=leaf.shape).astype(leaf.dtype)
        return rng.integers(0, 1000, size=leaf.shape).astype(leaf.dtype)

    return jax.tree.map(fill, nn.unbox(jax.eval_shape(init_fn(model))))


def abstract_params(model: nn.Module):
    """The model's unboxed params as ShapeDtypeStructs (no memory, no compilation)."""
    ids = jnp.zeros((1, LENGTH), jnp.int32)
    return nn.unbox(jax.eval_shape(model.init, jax.random.PRNGKey(0), ids)["params"])


def host(tree):
    """Every leaf as a numpy array (a copy independent of devices)."""
    return jax.tree.map(lambda x: np.asarray(jax.device_get(x)), tree)


def options(**overrides) -> ml_collections.ConfigDict:
    values = dict(
        save_every_steps=1, save_every_minutes=0, keep_last=0, keep_every=0, async_save=True
    )
    values.update(overrides)
    return ml_collections.ConfigDict(values)


def metadata(config: BertConfig = TINY, fingerprint: str | None = "vocab-a") -> dict:
    return {
        "model": config.to_dict(),
        "vocab_fingerprint": fingerprint,
        "scan_layers": config.scan_layers,
        "run_config": {"train": {"num_steps": 10}, "note": "tiny"},
    }


def run_config(resume_from: str = "", init_from: str = "") -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"resume_from": resume_from, "init_from": init_from})


def pretraining(config: BertConfig = TINY) -> BertForPreTraining:
    return BertForPreTraining(config)


def shardings_of(tree):
    return jax.tree.map(lambda x: x.sharding, tree)


def snapshot(directory) -> dict:
    """path -> (size, mtime_ns) of every file under `directory`: what 'unchanged' means."""
    root = pathlib.Path(directory)
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }
