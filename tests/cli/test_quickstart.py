"""The README's two Quickstart commands, shortened to a few steps: pretraining on the embedded
corpus (Python's documentation) prints the fine-tuning command, and that command fine-tunes its
checkpoint on the embedded task."""

import json
import os
import pathlib
import shlex
import subprocess
import sys

import pytest

from bert_jax.data import demo_corpus

REPO = pathlib.Path(__file__).resolve().parents[2]
FEW_STEPS = [
    "--config.train.num_steps=4", "--config.train.eval_every_steps=4",
    "--config.train.log_every_steps=2", "--config.train.batch_size=8",
]  # fmt: skip


def bert_jax(*args: str) -> str:
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "bert_jax", *args]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout + run.stderr


@pytest.mark.slow
def test_quickstart_pretrains_and_its_printed_command_finetunes_the_checkpoint(tmp_path):
    workdir = tmp_path / "quickstart"
    out = bert_jax(
        "pretrain", "--config=configs/pretrain.py:quickstart", f"--workdir={workdir}",
        *FEW_STEPS, "--config.optimizer.warmup_steps=2", "--config.train.eval_batches=2",
    )  # fmt: skip
    assert "eval step 4:" in out
    assert (workdir / "demo_data" / "shards" / "metadata.json").is_file()
    assert (workdir / "checkpoints" / "4").is_dir()
    printed = [line.strip() for line in out.splitlines() if "bert-jax finetune" in line]
    assert printed == [demo_corpus.finetune_command(str(workdir))]

    out = bert_jax(*shlex.split(printed[0])[1:], *FEW_STEPS)  # after "bert-jax"
    assert "eval step 4:" in out
    results = json.loads((tmp_path / "quickstart-finetune" / "eval_results.json").read_text())
    assert results["task"] == "glue/docsource" and results["step"] == 4
    assert str(workdir) in results["init_from"]
    dev = results["splits"]["dev"]
    assert dev["examples"] > 500 and 0.0 <= dev["accuracy"] <= 1.0
    finetuned = tmp_path / "quickstart-finetune"
    assert (finetuned / "predictions_dev.tsv").is_file()
    assert (finetuned / "data" / "DocSource" / "dev.tsv").is_file()  # the rows it numbers
