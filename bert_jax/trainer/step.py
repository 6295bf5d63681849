"""The training step and the evaluation step of any task: pure functions, jitted with explicit
shardings. The task supplies the forward pass, the loss sums and their normalisers.

train_step(state, batch) -> (state, metrics)
  dropout key = fold_in(state.rng, state.step) (then fold_in(., micro-batch index));
  with accum_steps = k > 1 the batch is cut into k micro-batches and a `lax.scan` runs forward +
  backward on one at a time, adding float32 gradients into one buffer: peak activation memory is
  that of one micro-batch. The loss of every micro-batch is divided by normalisers of the WHOLE
  batch (the task's: real MLM predictions, real sequences, labelled tokens), so k micro-batches
  give exactly the gradient of the k-times batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec

from bert_jax import sharding
from bert_jax.tasks.base import Task
from bert_jax.trainer.state import TrainState


def split_micro_batches(batch: dict, k: int, mesh) -> dict:
    """[B, ...] -> [k, B/k, ...] where micro-batch i takes rows i, i+k, i+2k, ...: each device
    already holds B/(k * shards) rows of every micro-batch, so the split moves no data."""
    spec = sharding.batch_sharding(mesh).spec

    def split(x):
        x = x.reshape(x.shape[0] // k, k, *x.shape[1:]).swapaxes(0, 1)
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, PartitionSpec(None, *spec)))

    return jax.tree.map(split, batch)


def make_train_step(task: Task, tx, schedule, mesh, accum_steps: int = 1, param_shardings=None):
    """The pure step `(state, batch) -> (state, metrics)` (not jitted; see `jit_train_step`).

    `param_shardings` pins the gradient accumulator to the parameters' layout (under fsdp each
    device then holds only its shard of the running sum)."""

    def step(state: TrainState, batch: dict):
        rng = jax.random.fold_in(state.rng, state.step)
        norms = task.normalisers(batch)

        def loss_fn(params, micro, micro_rng):
            sums = task.loss_sums(task.apply(params, micro, micro_rng, False), micro)
            return task.loss(sums, norms), sums

        grad_fn = jax.grad(loss_fn, has_aux=True)
        if accum_steps == 1:
            grads, sums = grad_fn(state.params, batch, rng)
        else:
            micro_batches = split_micro_batches(batch, accum_steps, mesh)

            def accumulate(carry, xs):
                micro, index = xs
                grads, sums = grad_fn(state.params, micro, jax.random.fold_in(rng, index))
                return jax.tree.map(jnp.add, carry, (grads, sums)), None

            zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), state.params)
            if param_shardings is not None:
                zeros = jax.lax.with_sharding_constraint(zeros, param_shardings)
            first = jax.tree.map(lambda x: x[0], micro_batches)
            sum_shapes = jax.eval_shape(lambda: grad_fn(state.params, first, rng)[1])
            zero_sums = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), sum_shapes)
            (grads, sums), _ = jax.lax.scan(
                accumulate, (zeros, zero_sums), (micro_batches, jnp.arange(accum_steps))
            )
            grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, state.params)

        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            **sums,
            "loss": task.loss(sums, norms),
            "grad_norm": optax.global_norm(grads),
            "learning_rate": jnp.asarray(schedule(state.step), jnp.float32),
        }
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, metrics

    return step


def make_eval_step(task: Task):
    """`(params, batch) -> task.eval_outputs`: deterministic forward, no dropout."""

    def step(params, batch: dict) -> dict:
        return task.eval_outputs(task.apply(params, batch, None, True), batch)

    return step


class InMesh:
    """A jitted step that traces under the mesh and logical rules (so the model's activation
    constraints apply) whenever it is called or lowered."""

    def __init__(self, jitted, mesh):
        self.jitted, self.mesh = jitted, mesh

    def __call__(self, *args):
        with sharding.activate(self.mesh):
            return self.jitted(*args)

    def lower(self, *args):
        with sharding.activate(self.mesh):
            return self.jitted.lower(*args)


def jit_train_step(step, state_shardings, mesh) -> InMesh:
    """Explicit in/out shardings; the old state is donated (updated in place)."""
    jitted = jax.jit(
        step,
        in_shardings=(state_shardings, sharding.batch_sharding(mesh)),
        out_shardings=(state_shardings, sharding.replicated(mesh)),
        donate_argnums=(0,),
    )
    return InMesh(jitted, mesh)


def jit_eval_step(step, param_shardings, mesh) -> InMesh:
    jitted = jax.jit(
        step,
        in_shardings=(param_shardings, sharding.batch_sharding(mesh)),
        out_shardings=sharding.replicated(mesh),
    )
    return InMesh(jitted, mesh)
