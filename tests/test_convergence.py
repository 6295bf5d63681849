"""A tiny BERT pretrained on real text (a Gutenberg novel, the Google uncased vocab) through the
real command: the MLM loss must fall clearly and held-out MLM accuracy rise far above chance."""

import os
import re
import subprocess
import sys

import pytest

from bert_jax.data.corpus_readers import CorpusSpec
from bert_jax.data.prepare import PrepareOptions, prepare
from tests.conftest import REPO, shared_path

STEPS = 150


def _metrics(log: str, kind: str) -> list[dict[str, float]]:
    """The `KIND step N: name=value, ...` lines the loop prints, in order."""
    rows = []
    for step, rest in re.findall(rf"{kind} step (\d+): ([^\n\r]*)", log):
        values = re.findall(r"(\w+)=([-\d.e+]+)", rest.replace(",", " ").replace("  ", " "))
        rows.append({"step": int(step), **{k: float(v) for k, v in values}})
    return rows


@pytest.mark.slow
def test_mlm_loss_falls_and_accuracy_rises_on_gutenberg(tmp_path):
    novel = shared_path("corpus", "gutenberg", "chesterton-thursday.txt")
    vocab = shared_path("vocab", "bert-base-uncased", "vocab.txt")
    shards = tmp_path / "shards"
    spec = CorpusSpec(format="prose", inputs=(str(novel),), prose_documents="paragraph")
    prepare(PrepareOptions(corpus=spec, output=str(shards), vocab=str(vocab), num_shards=2,
                           eval_documents=200, progress=False))  # fmt: skip
    command = [
        sys.executable, "-m", "bert_jax", "pretrain", "--config=configs/pretrain.py:tiny",
        f"--workdir={tmp_path / 'run'}", f"--config.data.data_dir={shards}",
        "--config.model.dtype=float32", "--config.data.max_seq_length=64",
        "--config.data.max_predictions_per_seq=10", "--config.train.batch_size=32",
        f"--config.train.num_steps={STEPS}", "--config.train.log_every_steps=10",
        f"--config.train.eval_every_steps={STEPS}", "--config.train.eval_batches=4",
        "--config.optimizer.learning_rate=1e-3", "--config.optimizer.warmup_steps=20",
        "--config.checkpoint.save_every_steps=0", "--config.checkpoint.save_every_minutes=0",
    ]  # fmt: skip
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    train = _metrics(run.stdout + run.stderr, "train")
    evaluation = _metrics(run.stdout + run.stderr, "eval")
    assert train[0]["step"] == 10 and train[-1]["step"] == STEPS and evaluation
    # Measured: train MLM loss 9.99 -> 6.23, accuracy 0.024 -> 0.067, eval accuracy 0.058.
    # ln(30522) = 10.3 at the start; a model that learns nothing stays there.
    assert train[-1]["mlm_loss"] < train[0]["mlm_loss"] - 2.0, train
    assert train[-1]["mlm_accuracy"] > train[0]["mlm_accuracy"] + 0.02, train
    assert evaluation[-1]["mlm_accuracy"] > 0.04, evaluation  # chance: 1 in 30522
