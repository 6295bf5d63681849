"""Checkpointer and resume_or_init: exact round trip, save schedule and retention, SIGTERM,
restore onto other meshes and process counts, the resume order, and refusals that leave the
workdir untouched."""

import datetime
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import flax.linen as nn
import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from bert_jax.checkpoint import manager as checkpointing
from bert_jax.checkpoint import restore as checkpoint_restore
from bert_jax.errors import UserError
from tests.checkpoint import fixtures as fx

REPO = pathlib.Path(__file__).resolve().parents[2]


def assert_trees_equal(actual, expected):
    a, b = fx.host(actual), fx.host(expected)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def saved_workdir(tmp_path, state, step=5, data_state=None, meta=None, name="run"):
    workdir = tmp_path / name
    with checkpointing.Checkpointer(workdir, fx.options(), meta or fx.metadata()) as ckpt:
        assert ckpt.save(step, state, data_state or {"batches": step}, metrics={"loss": 2.5})
    return workdir


def scratch_never_called():
    raise AssertionError("init_state_fn must not be called when a checkpoint is restored")


@pytest.fixture(scope="module")
def model():
    return fx.pretraining()


@pytest.fixture(scope="module")
def state8(model):
    return fx.make_state(model, fx.mesh(1, 8, 1))


def test_round_trip_restores_every_leaf_and_the_data_position(tmp_path, model, state8):
    workdir = saved_workdir(tmp_path, state8, step=5, data_state={"epoch": 1, "offset": 40})
    target = fx.abstract_state(model, fx.mesh(1, 8, 1))
    with checkpointing.Checkpointer(workdir, fx.options(), fx.metadata()) as ckpt:
        state, data, source = checkpointing.resume_or_init(
            ckpt, fx.run_config(), target, scratch_never_called
        )
    assert_trees_equal(state, state8)
    assert int(state.step) == 1 and int(state.opt_state[0].count) == 1
    assert data == {"epoch": 1, "offset": 40}
    assert source == f"resumed from step 5 of {workdir}"
    # The metadata is plain JSON on disk: readable with no JAX, Orbax or TensorFlow.
    stored = json.loads((workdir / "checkpoints/5/metadata/metadata").read_text())
    assert stored["model"] == fx.TINY.to_dict()
    assert stored["vocab_fingerprint"] == "vocab-a" and stored["scan_layers"] is False
    assert stored["run_config"] == {"train": {"num_steps": 10}, "note": "tiny"}
    assert json.loads((workdir / "checkpoints/5/metrics/metrics").read_text()) == {"loss": 2.5}


def test_boxed_targets_get_their_boxes_back(tmp_path, model, state8):
    workdir = saved_workdir(tmp_path, state8)
    boxed = jax.eval_shape(fx.init_fn(model))
    target = fx.abstract_state(model, fx.mesh(1, 8, 1))
    boxed_target = jax.tree.map(
        lambda box, leaf: box.replace_boxed(leaf) if isinstance(box, nn.Partitioned) else leaf,
        boxed,
        target,
        is_leaf=lambda x: isinstance(x, nn.Partitioned),
    )
    with checkpointing.Checkpointer(workdir, fx.options(), fx.metadata()) as ckpt:
        state, _, _ = checkpointing.resume_or_init(
            ckpt, fx.run_config(), boxed_target, scratch_never_called
        )
    kernel = state.params["bert"]["encoder"]["layer_0"]["intermediate"]["kernel"]
    assert isinstance(kernel, nn.LogicallyPartitioned) and kernel.names == ("embed", "mlp")
    assert_trees_equal(nn.unbox(state), state8)


def test_schedule_milestones_retention_and_no_overwrite(tmp_path, state8):
    opts = fx.options(save_every_steps=2, keep_last=1, keep_every=4)
    with checkpointing.Checkpointer(tmp_path, opts, fx.metadata()) as ckpt:
        started = [s for s in range(1, 11) if ckpt.save(s, state8, {})]
        ckpt.wait()
        assert started == [2, 4, 6, 8, 10]
        assert ckpt.all_steps() == [4, 8, 10]  # the last one plus the multiples of 4
        assert ckpt.save(11, state8, {}, force=True)  # the final save, off the schedule
        ckpt.wait()
        before = fx.snapshot(tmp_path / "checkpoints" / "8")
        assert not ckpt.save(8, state8, {}, force=True)  # an existing step is never rewritten
        ckpt.wait()
        assert ckpt.all_steps() == [4, 8, 11]
    assert fx.snapshot(tmp_path / "checkpoints" / "8") == before


def test_time_policy_counts_from_the_run_start_then_from_the_last_checkpoint():
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    policy = checkpointing.EveryMinutes(1.0, started=start)

    def decide(seconds, previous=(), saving=False):
        context = ocp.checkpoint_managers.DecisionContext(
            is_saving_in_progress=saving,
            reached_preemption=False,
            multiprocessing_options=ocp.options.MultiprocessingOptions(),
        )
        now = checkpointing._SaveTime(7, start + datetime.timedelta(seconds=seconds))
        return policy.should_save(now, list(previous), context=context)

    old = checkpointing._SaveTime(1, start - datetime.timedelta(hours=5))  # an earlier run's
    assert not decide(30) and not decide(30, [old])
    assert decide(61) and decide(61, [old])
    assert not decide(61, saving=True)  # never queue behind a save in progress
    last = checkpointing._SaveTime(3, start + datetime.timedelta(seconds=100))
    assert not decide(150, [old, last]) and decide(161, [old, last])


def test_time_based_saves_in_a_run(tmp_path, state8):
    opts = fx.options(save_every_steps=0, save_every_minutes=0.03)  # 1.8 s
    with checkpointing.Checkpointer(tmp_path, opts, fx.metadata()) as ckpt:
        assert not ckpt.save(1, state8, {})
        time.sleep(1.9)
        assert ckpt.save(2, state8, {})
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2"]


def test_sigterm_turns_on_preemption_and_forces_the_save(tmp_path, state8):
    previous = signal.getsignal(signal.SIGTERM)
    opts = fx.options(save_every_steps=1000)
    ckpt = checkpointing.Checkpointer(tmp_path, opts, fx.metadata())
    assert not ckpt.reached_preemption(3)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)
    assert ckpt.reached_preemption(3)
    assert ckpt.save(3, state8, {"batches": 3})  # off schedule, saved because of the notice
    ckpt.wait()
    ckpt.close()
    assert signal.getsignal(signal.SIGTERM) is previous
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["3"]


MESHES = {"8": (1, 8, 1), "1": (1, 1, 1), "2x2x2": (2, 2, 2), "4x2": (1, 4, 2)}


@pytest.mark.parametrize("written, read", [("8", "1"), ("1", "8"), ("2x2x2", "4x2")])
def test_restore_onto_another_mesh(tmp_path, model, written, read):
    state = fx.make_state(model, fx.mesh(*MESHES[written]), seed=3)
    workdir = saved_workdir(tmp_path, state)
    target = fx.abstract_state(model, fx.mesh(*MESHES[read]))
    with checkpointing.Checkpointer(workdir, fx.options(), fx.metadata()) as ckpt:
        restored, _, _ = checkpointing.resume_or_init(
            ckpt, fx.run_config(), target, scratch_never_called
        )
    assert_trees_equal(restored, state)
    assert fx.shardings_of(restored) == fx.shardings_of(target)
    query = restored.params["bert"]["encoder"]["layer_1"]["attention"]["query"]["kernel"]
    assert len(query.sharding.device_set) == np.prod(MESHES[read])


TWO_PROCESS_READER = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    port, rank, workdir, expected = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=rank)
    import numpy as np
    from bert_jax.checkpoint import manager as checkpointing
    from tests.checkpoint import fixtures as fx

    assert jax.device_count() == 8 and jax.local_device_count() == 4
    model = fx.pretraining()
    target = fx.abstract_state(model, fx.mesh(1, 4, 2))
    ckpt = checkpointing.Checkpointer(workdir, fx.options(), fx.metadata())
    state, data, source = checkpointing.resume_or_init(ckpt, fx.run_config(), target, None)
    reference = np.load(expected)
    wanted = dict(jax.tree_util.tree_flatten_with_path(target)[0])
    shards = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        name = jax.tree_util.keystr(path)
        assert leaf.sharding == wanted[path].sharding, name
        for shard in leaf.addressable_shards:
            np.testing.assert_array_equal(np.asarray(shard.data), reference[name][shard.index])
            shards += 1
    ckpt.close()
    print(f"rank {rank}: {shards} shards equal; {source}; data {data}", flush=True)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_restore_written_by_one_process_in_two_processes(tmp_path, model):
    """1 process x 8 devices writes; 2 processes x 4 devices (gloo) each restore their shards."""
    state = fx.make_state(model, fx.mesh(1, 8, 1), seed=5)
    workdir = saved_workdir(tmp_path, state, step=7)
    flat = jax.tree_util.tree_flatten_with_path(fx.host(state))[0]
    np.savez(tmp_path / "expected.npz", **{jax.tree_util.keystr(p): x for p, x in flat})
    script = tmp_path / "reader.py"
    script.write_text(TWO_PROCESS_READER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(port), str(rank), str(workdir)]
            + [str(tmp_path / "expected.npz")],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    for rank, (proc, out) in enumerate(zip(procs, outputs, strict=True)):
        assert proc.returncode == 0, out[-3000:]
        assert re.search(rf"rank {rank}: [1-9]\d* shards equal", out), out[-2000:]
        assert "resumed from step 7" in out
        assert "data {'batches': 7}" in out


def test_load_params_gives_host_arrays_and_the_config(tmp_path, model, state8):
    workdir = saved_workdir(tmp_path, state8, step=4)
    for path in (workdir, workdir / "checkpoints", workdir / "checkpoints" / "4"):
        config, params = checkpoint_restore.load_params(path)
        assert config == fx.TINY
        assert all(isinstance(x, np.ndarray) for x in jax.tree.leaves(params))
        assert_trees_equal(params, state8.params)


def test_resume_order_own_then_resume_from_then_init_from_then_scratch(tmp_path, model, state8):
    other = saved_workdir(tmp_path, state8, step=5, name="other")
    target = fx.abstract_state(model, fx.mesh(1, 8, 1))
    fresh = fx.make_state(model, fx.mesh(1, 8, 1), seed=9)
    calls = []

    def init_state():
        calls.append(1)
        return fresh

    workdir = tmp_path / "run"
    both = fx.run_config(resume_from=str(other), init_from=str(other))
    with checkpointing.Checkpointer(workdir, fx.options(), fx.metadata()) as ckpt:
        state, data, source = checkpointing.resume_or_init(ckpt, both, target, init_state)
        assert source.startswith(f"resume_from {other}/checkpoints/5") and not calls
        assert data == {"batches": 5}
        assert_trees_equal(state, state8)
        ckpt.save(6, fresh, {"batches": 6}, force=True)
    with checkpointing.Checkpointer(workdir, fx.options(), fx.metadata()) as ckpt:
        state, data, source = checkpointing.resume_or_init(ckpt, both, target, init_state)
        assert source == f"resumed from step 6 of {workdir}" and not calls
        assert_trees_equal(state, fresh)
    init_only = fx.run_config(init_from=str(other))
    with checkpointing.Checkpointer(tmp_path / "new", fx.options(), fx.metadata()) as ckpt:
        state, data, source = checkpointing.resume_or_init(ckpt, init_only, target, init_state)
        assert source.startswith("init_from bert-jax") and calls == [1] and data is None
        assert_trees_equal(state.params, state8.params)
        assert_trees_equal(state.opt_state, fresh.opt_state)
        state, data, source = checkpointing.resume_or_init(
            ckpt, fx.run_config(), target, init_state
        )
        assert source == "scratch" and calls == [1, 1]


# -- refusals: clear errors, and the workdir exactly as it was ------------------------------


def test_checkpoints_of_another_model_are_refused_naming_the_fields(tmp_path, model, state8):
    workdir = saved_workdir(tmp_path, state8)
    before = fx.snapshot(workdir)
    other = fx.TINY.replace(hidden_size=64, num_layers=3)
    with (
        checkpointing.Checkpointer(workdir, fx.options(), fx.metadata(other)) as ckpt,
        pytest.raises(UserError, match="hidden_size 32 -> 64; num_layers 2 -> 3"),
    ):
        checkpointing.resume_or_init(ckpt, fx.run_config(), None, scratch_never_called)
    assert fx.snapshot(workdir) == before


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(config=fx.TINY.replace(scan_layers=True)), "scan_layers=False"),
        (dict(fingerprint="vocab-b"), "another vocabulary"),
    ],
)
def test_layout_and_vocabulary_changes_are_refused(tmp_path, state8, change, message):
    workdir = saved_workdir(tmp_path, state8)
    before = fx.snapshot(workdir)
    with (
        checkpointing.Checkpointer(workdir, fx.options(), fx.metadata(**change)) as ckpt,
        pytest.raises(UserError, match=message),
    ):
        checkpointing.resume_or_init(ckpt, fx.run_config(), None, scratch_never_called)
    assert fx.snapshot(workdir) == before


def test_a_changed_optimizer_is_named_not_a_crash(tmp_path, model, state8):
    workdir = saved_workdir(tmp_path, state8)
    target = fx.abstract_state(model, fx.mesh(1, 8, 1))
    sgd_state = jax.eval_shape(optax.sgd(0.1, momentum=0.9).init, target.params)
    target = target.replace(opt_state=sgd_state)
    with (
        checkpointing.Checkpointer(workdir, fx.options(), fx.metadata()) as ckpt,
        pytest.raises(UserError, match="does not match this run's train state.*opt_state"),
    ):
        checkpointing.resume_or_init(ckpt, fx.run_config(), target, scratch_never_called)


# A failed tensorstore read leaves callbacks for Orbax's closed event loop: noise, not a leak.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_truncated_checkpoint_is_an_error_and_stays_on_disk(tmp_path, model, state8):
    workdir = saved_workdir(tmp_path, state8)
    data_files = [
        p for p in (workdir / "checkpoints/5/state").rglob("*") if p.is_file() and "/d/" in str(p)
    ]
    assert data_files
    for file in data_files:
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 3])
    before = fx.snapshot(workdir)
    target = fx.abstract_state(model, fx.mesh(1, 8, 1))
    with (
        checkpointing.Checkpointer(workdir, fx.options(), fx.metadata()) as ckpt,
        pytest.raises(UserError, match="checkpoints/5 is unreadable"),
    ):
        checkpointing.resume_or_init(ckpt, fx.run_config(), target, scratch_never_called)
    assert fx.snapshot(workdir) == before


def test_missing_paths_are_errors_and_a_failed_start_writes_nothing(tmp_path):
    workdir = tmp_path / "never-created"
    for config in (
        fx.run_config(resume_from=str(tmp_path / "nope")),
        fx.run_config(init_from=str(tmp_path / "nope")),
    ):
        with (
            checkpointing.Checkpointer(workdir, fx.options(), fx.metadata()) as ckpt,
            pytest.raises(UserError, match="not found|does not exist"),
        ):
            checkpointing.resume_or_init(ckpt, config, None, lambda: fx_state_stub())
    assert not workdir.exists()
    with pytest.raises(UserError, match="does not exist"):
        checkpoint_restore.load_params(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no bert-jax checkpoint"):
        checkpoint_restore.load_params(tmp_path / "empty")


def fx_state_stub():
    class Stub:
        params = {}

    return Stub()
