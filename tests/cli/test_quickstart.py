"""The README's first command: pretraining on the embedded demo corpus, shortened to a few steps."""

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_quickstart_config_prepares_the_demo_corpus_trains_and_saves(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
    command = [
        sys.executable, "-m", "bert_jax", "pretrain", "--config=configs/pretrain.py:quickstart",
        f"--workdir={tmp_path}", "--config.train.num_steps=6", "--config.optimizer.warmup_steps=2",
        "--config.train.eval_every_steps=6", "--config.train.log_every_steps=3",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "eval step 6:" in run.stdout + run.stderr
    assert (tmp_path / "demo_data" / "shards" / "metadata.json").is_file()
    assert (tmp_path / "checkpoints" / "6").is_dir()
