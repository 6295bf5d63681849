"""The loop (`train_and_evaluate`) beyond the CLI smoke test (which covers resuming): a SIGTERM
mid-run saves the step the run reached, and the run stops there."""

import os
import signal

import ml_collections

from bert_jax import sharding
from bert_jax.tasks import pretraining
from bert_jax.trainer import loop as train
from configs import pretrain


def tiny_config(num_steps: int) -> ml_collections.ConfigDict:
    config = pretrain.get_config("tiny,runlocal")
    config.model.dtype = "float32"
    config.model.vocab_size = 128
    config.data.synthetic = True
    config.train.num_steps = num_steps
    config.checkpoint.save_every_steps = 1000
    config.optimizer.warmup_steps = 2
    config.lock()
    return config


def test_sigterm_saves_the_current_step_and_stops(tmp_path, monkeypatch):
    batches = 0
    to_global = sharding.to_global_batch

    def counting(host_batch, feed):
        nonlocal batches
        batches += 1
        if batches == 3:  # while step 3 is being prepared: as a preemption notice would
            os.kill(os.getpid(), signal.SIGTERM)
        return to_global(host_batch, feed)

    monkeypatch.setattr(sharding, "to_global_batch", counting)
    summaries = train.train_and_evaluate(
        tiny_config(num_steps=50), str(tmp_path), pretraining.build
    )
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [3] and batches == 3
    assert "train/loss" not in summaries  # stopped long before the first log step (5)
