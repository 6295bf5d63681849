"""Fine-tuning on the shared trainer (tiny GLUE world, tests/tasks/glue_fixtures.py): the step
on a data x fsdp x tensor mesh equals one device; evaluation does not depend on the batch size;
a run loads the encoder, starts a new head and keeps its best checkpoint; SIGTERM mid-run
resumes to the same parameters, bit for bit, as an uninterrupted run."""

import os
import signal

import jax
import numpy as np
import pytest

from bert_jax import sharding
from bert_jax.checkpoint import manager as checkpointing
from bert_jax.checkpoint import restore
from bert_jax.tasks import glue
from bert_jax.trainer import loop
from bert_jax.trainer import state as train_state
from bert_jax.trainer import step as train_step
from tests.tasks import glue_fixtures as world


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return world.glue_world(tmp_path_factory.mktemp("glue_world"))


def build(config, feed=None, eval_batch_size=8):
    return glue.build(config, None, feed, eval_batch_size, warn=print)


def _steps(config, mesh_sizes, steps=2):
    """Losses and params after `steps` fine-tuning steps on a mesh of `mesh_sizes`."""
    task = build(config)
    devices = jax.devices()[: int(np.prod(list(mesh_sizes.values())))]
    mesh = sharding.make_mesh(
        {"data": 1, "fsdp": 1, "tensor": 1, "dcn_data": -1, "dcn_fsdp": 1, "dcn_tensor": 1}
        | mesh_sizes,
        devices,
    )
    from bert_jax.trainer import optim

    tx, schedule = optim.make_optimizer(config.optimizer, 12)
    sharded = train_state.plan(train_state.init_fn(task, tx, 0), mesh)
    state = train_state.create(sharded)
    step = train_step.jit_train_step(
        train_step.make_train_step(task, tx, schedule, mesh, 1, sharded.shardings.params),
        sharded.shardings,
        mesh,
    )
    stream, losses = task.data.train(None), []
    for _ in range(steps):
        batch = jax.device_put(next(stream), sharding.batch_sharding(mesh))
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    return losses, jax.device_get(state.params)


@pytest.mark.slow
def test_the_step_on_data_fsdp_tensor_equals_one_device(tiny):
    config = world.finetune_config(*tiny)
    one = _steps(config, {"data": 1})
    spread = _steps(config, {"data": 2, "fsdp": 2, "tensor": 2})
    np.testing.assert_allclose(one[0], spread[0], rtol=2e-5)
    for a, b in zip(jax.tree.leaves(one[1]), jax.tree.leaves(spread[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    assert one[0][0] != one[0][-1]  # it trained


def _evaluate(task, params, eval_batch_size):
    data = glue.SentenceData(**{**vars(task.data), "eval_batch_size": eval_batch_size})
    data._eval_batches = None
    step = jax.jit(train_step.make_eval_step(task))
    outputs = [step(params, batch) for batch in data.evaluation()["dev"]]
    return task.evaluate("dev", jax.device_get(outputs))


def test_dev_metrics_do_not_depend_on_the_batch_size(tiny):
    task = build(world.finetune_config(*tiny))
    params = task.init_params(jax.random.PRNGKey(3), task.example_batch())
    eight, thirteen = _evaluate(task, params, 8), _evaluate(task, params, 13)
    assert eight.keys() == thirteen.keys() == {"f1", "accuracy", "loss"}
    assert eight["f1"] == thirteen["f1"] and eight["accuracy"] == thirteen["accuracy"]
    assert eight["loss"] == pytest.approx(thirteen["loss"], rel=1e-5)
    # 21 dev examples: 8 and 13 both leave a padded last batch; every example counted once.
    assert eight["accuracy"] * 21 == pytest.approx(round(eight["accuracy"] * 21))


@pytest.mark.slow
def test_sigterm_mid_finetune_resumes_bit_exact(tiny, tmp_path, monkeypatch, capsys):
    config = world.finetune_config(*tiny)
    summaries = loop.train_and_evaluate(config, str(tmp_path / "straight"), glue.build)
    out = capsys.readouterr().out
    # The encoder (and pooler) loaded; the MLM/NSP heads dropped; the classifier new.
    assert "loaded 39, new 2, dropped 7 (new: classifier/bias, classifier/kernel)" in out, out
    assert {"eval/f1", "eval/accuracy", "train/loss"} <= set(summaries) and summaries.finished
    # The best checkpoint (by F1) is kept besides the last.
    best = checkpointing.Best("f1")
    assert checkpointing.best_step(tmp_path / "straight" / "checkpoints", best) is not None
    kept = checkpointing.Checkpointer(tmp_path / "straight", None, {}).all_steps()
    assert (
        12 in kept and checkpointing.best_step(tmp_path / "straight" / "checkpoints", best) in kept
    )

    batches = 0
    to_global = sharding.to_global_batch

    def interrupting(host_batch, feed):
        nonlocal batches
        batches += 1
        # Calls 1-6: steps 1-6; 7-9: the 3 dev batches of the epoch-end evaluation; so the
        # notice arrives during that evaluation and the run stops after step 7.
        if batches == 8:
            os.kill(os.getpid(), signal.SIGTERM)
        return to_global(host_batch, feed)

    with monkeypatch.context() as m:
        m.setattr(sharding, "to_global_batch", interrupting)
        loop.train_and_evaluate(config, str(tmp_path / "resumed"), glue.build)
    assert checkpointing.Checkpointer(tmp_path / "resumed", None, {}).latest_step() == 7
    loop.train_and_evaluate(config, str(tmp_path / "resumed"), glue.build)

    _, straight = restore.load_params(str(tmp_path / "straight"))
    _, resumed = restore.load_params(str(tmp_path / "resumed"))
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
