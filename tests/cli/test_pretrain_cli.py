"""`bert-jax pretrain`: the real command on a tiny config and real shards (made by `bert-jax
prepare` from a Gutenberg excerpt) trains, evaluates, writes TensorBoard logs and checkpoints,
and resumes where it stopped; bad input is one line and exit 2 before anything compiles; a
diverging run stops without saving the diverged state."""

import os
import pathlib
import subprocess
import sys

import pytest

from bert_jax import main as cli

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY = ["--config=configs/pretrain.py:tiny,runlocal", "--config.model.dtype=float32"]
SYNTHETIC = [*TINY, "--config.data.synthetic=True", "--config.model.vocab_size=128"]


@pytest.fixture
def shards(tmp_path, uncased_vocab, gutenberg_dir):
    """Shards of the first ~200 KB of one novel, through the real `bert-jax prepare`."""
    text = (gutenberg_dir / "austen-persuasion.txt").read_text(encoding="utf-8")[:200_000]
    (tmp_path / "persuasion.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "shards"
    args = [f"--input={tmp_path}/persuasion.txt", "--format=prose", f"--output={out}",
            "--prose_documents=paragraph", f"--vocab={uncased_vocab}", "--num_shards=2",
            "--eval_fraction=0.1", "--workers=1", "--no_progress"]  # fmt: skip
    assert cli.main(["prepare", *args]) == 0
    return out


def pretrain(*args, cwd=REPO):
    """The command in a fresh process, on one CPU device (the in-process runs below use the
    8 fake devices of conftest: the same command on another mesh)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    return subprocess.run(
        [sys.executable, "-m", "bert_jax", "pretrain", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_pretrain_on_real_shards_then_resume(shards, tmp_path, capsys):
    workdir = tmp_path / "run"  # shards live in tmp_path too
    common = [*TINY, f"--workdir={workdir}", f"--config.data.data_dir={shards}",
              "--config.train.log_every_steps=2", "--config.train.eval_every_steps=4",
              "--config.checkpoint.save_every_steps=2",
              "--config.optimizer.warmup_steps=2"]  # fmt: skip
    first = pretrain(*common, "--config.train.num_steps=4")
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout + first.stderr
    assert "start: scratch, step 0" in out
    assert "train step 4: mlm_loss=" in out and "eval step 4: mlm_loss=" in out
    assert "gflops_per_device=" in out  # CPU: achieved rate (no MFU)
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [
        "2",
        "4",
    ]
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))

    capsys.readouterr()
    assert cli.main(["pretrain", *common, "--config.train.num_steps=6"]) == 0  # in-process
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "resumed from step 4" in out and "train step 6: mlm_loss=" in out
    assert (workdir / "checkpoints" / "6").is_dir()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config.mesh.data=3", "--config.mesh.tensor=2"],
         "mesh data=3 x fsdp=1 x tensor=2 = 6 does not match 8 devices"),
        (["--config.train.batch_size=30"], "global batch 30 is not divisible by 8 batch shards"),
        (["--config.data.max_seq_length=1024"],
         "data.max_seq_length 1024 exceeds the position table (model.max_position_embeddings 512)"),
        (["--config.trainer.batch_size=8"], "has no field 'trainer.batch_size'"),
        (["--config.train.batchsize=8"], "has no field 'train.batchsize' (train has: accum_steps"),
        (["--config.train.batch_size=many"], "--config.train.batch_size=many"),
        (["--config.model.num_heads=5"],
         "model.hidden_size 128 is not divisible by model.num_heads 5"),
        (["--config.model.num_layers=0"], "model.num_layers must be a positive integer, got 0"),
        (["--config.model.dtype=float64"],
         "model.dtype 'float64' is not one of float32, bfloat16, float16"),
        (["--config.model.hidden_dropout=1.5"], "model.hidden_dropout 1.5 must be in [0, 1)"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    code = cli.main(["pretrain", *SYNTHETIC, f"--workdir={tmp_path}", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("bert-jax pretrain: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "checkpoints").exists()


def test_missing_config_file_workdir_and_unknown_size(tmp_path, capsys):
    cases = [
        (["--config=configs/nothere.py", f"--workdir={tmp_path}"], "configs/nothere.py does not"),
        ([*SYNTHETIC], "--workdir is required"),
        (["--config=configs/pretrain.py:huge", f"--workdir={tmp_path}"], "unknown size 'huge'"),
        (["--config=configs/pretrain.py:base,fast", f"--workdir={tmp_path}"], "unknown option"),
    ]
    for args, message in cases:
        assert cli.main(["pretrain", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_a_diverging_run_stops_without_saving_the_bad_state(tmp_path, capsys):
    args = [*SYNTHETIC, f"--workdir={tmp_path}", "--config.train.num_steps=6",
            "--config.checkpoint.save_every_steps=1", "--config.optimizer.warmup_steps=0",
            "--config.optimizer.learning_rate=1e30",
            "--config.optimizer.clip_norm=0.0"]  # fmt: skip
    assert cli.main(["pretrain", *args]) == 1
    err = capsys.readouterr().err.splitlines()[-1]  # after the progress bar
    assert err.startswith("bert-jax pretrain: training diverged: non-finite"), err
    assert "(last checkpoint: step" in err
    step = int(err.split(" at step ")[1].split(" ")[0])
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert saved == list(range(1, step)), (saved, step)
