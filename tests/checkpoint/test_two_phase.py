"""Two-phase pretraining (configs/pretrain.py:SIZE,phase2): a tiny phase 1 at 32 tokens, then
phase 2 at 64 tokens with another batch size from its workdir. Phase 2 starts from phase 1's
params AND optimizer moments, with a fresh data position, its step restarting at 0 (or
continuing, as the config says); a phase-2 config that cannot fit is one line and exit 2."""

import jax
import numpy as np
import pytest

from bert_jax import main as cli
from bert_jax.checkpoint import (
    manager as checkpointing,
)
from bert_jax.checkpoint import (
    metadata as checkpoint_metadata,
)
from bert_jax.checkpoint import (
    restore as checkpoint_restore,
)
from bert_jax.tasks import pretraining
from bert_jax.trainer import loop as train
from configs import pretrain
from tests.checkpoint import fixtures as fx

PHASE1_STEPS = 3
SYNTHETIC = {
    "data.synthetic": True,
    "model.vocab_size": 128,
    "model.dtype": "float32",
    "model.hidden_size": 32,  # smaller than the tiny preset: quick to compile
    "model.num_layers": 1,
    "model.num_heads": 2,
    "model.intermediate_size": 64,
    "train.eval_batches": 0,
    "train.log_every_steps": 1,
    "optimizer.warmup_steps": 1,
    "checkpoint.save_every_minutes": 0,
}
PHASE1 = {
    **SYNTHETIC,
    "data.max_seq_length": 32,
    "data.max_predictions_per_seq": 5,
    "train.batch_size": 8,
    "train.num_steps": PHASE1_STEPS,
    "checkpoint.save_every_steps": PHASE1_STEPS,
}
PHASE2 = {
    **SYNTHETIC,
    "data.max_seq_length": 64,
    "data.max_predictions_per_seq": 10,
    "train.batch_size": 16,
    "train.num_steps": 2,
    "checkpoint.save_every_steps": 1,
}


def flags(values: dict) -> list[str]:
    return [f"--config.{k}={v}" for k, v in values.items()]


def config_of(arg: str, values: dict):
    config = pretrain.get_config(arg)
    for dotted, value in values.items():
        section, name = dotted.split(".")
        config[section][name] = value
    return config


@pytest.fixture(scope="module")
def phase1(tmp_path_factory):
    """The workdir of a finished phase 1 (the real command, in this process)."""
    workdir = tmp_path_factory.mktemp("phase1")
    argv = ["pretrain", "--config=configs/pretrain.py:tiny", f"--workdir={workdir}"]
    assert cli.main([*argv, *flags(PHASE1)]) == 0
    assert checkpoint_metadata.committed_steps(workdir / "checkpoints") == [PHASE1_STEPS]
    return workdir


def start_of_phase2(phase1, workdir, **changes):
    """(state, data_state, source) exactly as `train_and_evaluate` starts phase 2."""
    config = config_of("tiny,phase2", {**PHASE2, "checkpoint.init_optimizer": True, **changes})
    config.init_from = str(phase1)
    run = train.setup(config, str(workdir), pretraining.build)
    with train.checkpointer(run) as ckpt:
        return checkpointing.resume_or_init(
            ckpt, config, run.sharded.abstract, lambda: pytest.fail("must not init from scratch")
        )


def counts(opt_state) -> list[int]:
    flat = jax.tree_util.tree_flatten_with_path(opt_state)[0]
    return [int(v) for p, v in flat if getattr(p[-1], "name", getattr(p[-1], "key", "")) == "count"]


@pytest.mark.parametrize("reset", [True, False])
@pytest.mark.slow
def test_phase2_starts_from_phase1_params_and_moments(phase1, tmp_path, reset):
    saved = checkpoint_restore.read_arrays(phase1 / "checkpoints" / str(PHASE1_STEPS))
    state, data_state, source = start_of_phase2(
        phase1, tmp_path / "phase2", **{"checkpoint.reset_step": reset, "train.num_steps": 5}
    )
    restored = fx.host(state)
    for name in ("params", "opt_state"):
        ours = checkpoint_restore.leaf_paths(getattr(restored, name))
        theirs = checkpoint_restore.leaf_paths(saved[name])
        assert sorted(ours) == sorted(theirs)
        for path, value in ours.items():
            if path.endswith("count"):
                continue
            np.testing.assert_array_equal(value, theirs[path], err_msg=f"{name}/{path}")
    # The moments are phase 1's (not a fresh, all-zero optimizer state).
    moments = checkpoint_restore.leaf_paths(restored.opt_state)
    assert any(np.abs(v).sum() > 0 for k, v in moments.items() if "/mu/" in k)
    assert data_state is None  # the new data starts at its beginning
    expected = 0 if reset else PHASE1_STEPS
    assert int(restored.step) == expected
    assert counts(restored.opt_state) and set(counts(restored.opt_state)) == {expected}
    kept = "reset to 0" if reset else f"continues from {PHASE1_STEPS}"
    assert f"params and optimizer state of step {PHASE1_STEPS}, step {kept}" in source
    assert not (tmp_path / "phase2").exists()  # nothing written before the first save


def test_phase2_command_trains_from_phase1_with_a_fresh_data_position(phase1, tmp_path, capsys):
    before = fx.snapshot(phase1)
    workdir = tmp_path / "phase2"
    argv = ["pretrain", "--config=configs/pretrain.py:tiny,phase2", f"--workdir={workdir}"]
    assert cli.main([*argv, *flags(PHASE2), f"--config.init_from={phase1}"]) == 0
    out = "".join(capsys.readouterr())
    assert f"params and optimizer state of step {PHASE1_STEPS}, step reset to 0" in out, out
    assert "seq 64" in out and "global batch 16 " in out
    root = workdir / "checkpoints"
    assert checkpoint_metadata.committed_steps(root) == [1, 2]
    assert checkpoint_metadata.read_data_state(root / "2") == {"step": 2}  # phase 2's batches only
    assert fx.snapshot(phase1) == before  # phase 1 is read, never written


@pytest.mark.parametrize(
    "changes, message",
    [
        (["--config.model.max_position_embeddings=48"],
         "data.max_seq_length 64 exceeds the position table (model.max_position_embeddings 48)"),
        (["--config.init_from="], "checkpoint.init_optimizer is set but init_from is empty"),
        (["--config.checkpoint.reset_step=False"],
         "is at step 3, not before train.num_steps 2: the step count continues"),
        (["--config.model.max_position_embeddings=256"],
         "holds checkpoints of another model (checkpoint -> this run): "
         "max_position_embeddings 512 -> 256"),
    ],
)  # fmt: skip
def test_a_phase2_that_cannot_fit_is_one_line_and_writes_nothing(
    phase1, tmp_path, capsys, changes, message
):
    workdir = tmp_path / "phase2"
    argv = ["pretrain", "--config=configs/pretrain.py:tiny,phase2", f"--workdir={workdir}"]
    code = cli.main([*argv, *flags(PHASE2), f"--config.init_from={phase1}", *changes])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not workdir.exists()


def test_base_phase2_is_the_documented_recipe():
    config = pretrain.get_config("base,phase2")
    assert (config.data.max_seq_length, config.data.max_predictions_per_seq) == (512, 80)
    assert (config.train.batch_size, config.train.num_steps) == (256, 100_000)
    assert config.checkpoint.init_optimizer and config.checkpoint.reset_step
    assert pretrain.get_config("base").checkpoint.init_optimizer is False
