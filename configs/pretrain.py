"""Pretraining (MLM + NSP), the original BERT recipe: batch 256 x 128 tokens, 1M steps,
AdamW without bias correction at 1e-4, 10k warmup, linear decay from step 0.

  bert-jax pretrain --config=configs/pretrain.py:base --workdir=DIR \
      --config.data.data_dir=SHARDS [--config.train.batch_size=...] [--config.mesh.fsdp=...]

ARG: "quickstart" (a tiny model on the embedded demo corpus), or a model size (tiny mini small
medium base large L-x_H-y), optionally followed by
",runlocal": a few small steps that check a config end to end on a workstation;
",phase2": phase 2 of two-phase pretraining (below).
Only the mesh and the batch size change between one CPU and a pod slice.

Two-phase pretraining (BERT paper, appendix A.2: 90% of the steps at 128 tokens, the last 10% at
512 "to learn the positional embeddings"): phase 1 is `base` stopped at 900k steps on shards made
with --max_seq_length=128; phase 2 continues from its workdir on shards made with 512:

  bert-jax pretrain --config=configs/pretrain.py:base --workdir=W1 \
      --config.data.data_dir=SHARDS_128 --config.train.num_steps=900000
  bert-jax pretrain --config=configs/pretrain.py:base,phase2 --workdir=W2 \
      --config.data.data_dir=SHARDS_512 --config.init_from=W1

Phase 2 takes phase 1's params AND optimizer state (checkpoint.init_optimizer), starts the new
data at its beginning, and restarts the step count and the schedule (checkpoint.reset_step: a
warmup, then a decay over phase 2's own steps, as NVIDIA's recipe does; with reset_step=False the
count and the schedule continue from phase 1's step to train.num_steps, as one TF Estimator run
over both phases would). Batch 256 x 512 tokens, as the paper's 128k tokens per batch; the
masked positions per sequence go from 20 to 80 (Google's example used 76, NVIDIA 80). NVIDIA's
LAMB recipe for a pod: phase 1 --config.optimizer.name=lamb, batch 65536, lr 6e-3, 7038 steps,
warmup 2000; phase 2 batch 32768, lr 4e-3, 1563 steps, warmup 200.
"""

from __future__ import annotations

from configs import common

SIZES = ("tiny", "mini", "small", "medium", "base", "large")
# L-2_H-128 ... L-12_H-768 (Google's compact BERTs) are accepted as well.


OPTIONS = ("runlocal", "phase2")


def parse_arg(arg: str) -> tuple[str, set[str]]:
    """ "base" -> ("base", set()); "tiny,runlocal,phase2" -> ("tiny", {"runlocal", "phase2"})."""
    parts = [p for p in (arg or "base").split(",") if p]
    size, flags = parts[0], set(parts[1:])
    unknown = flags - set(OPTIONS)
    if unknown:
        raise ValueError(f"configs/pretrain.py: unknown option(s) {sorted(unknown)} in {arg!r}")
    if size not in SIZES and not size.startswith("L-"):
        raise ValueError(f"configs/pretrain.py: unknown size {size!r}; one of {SIZES} or L-x_H-y")
    return size, flags


def quickstart_config():
    """A tiny BERT on the embedded demo corpus (Python's own documentation, about 1.7 MB, with an
    8k WordPiece vocab trained on it): the README's first command, minutes on a 2-core CPU.

    Set to learn visibly in 1500 small steps: held-out MLM accuracy about three times the
    unigram baseline, NSP well above its majority label. Two settings matter most. A wider
    initialisation than BERT's 0.02 (about 1/sqrt(128) at this width) makes the attention
    non-uniform from the start: with 0.02 or 0.04 the model stays on the unigram plateau
    (predicting "." and "the" everywhere) for over 1000 steps; with 0.08 it leaves it within
    200. Adam with bias correction: BERT's variant without it takes steps several times the
    learning rate while its second moment warms up, which kept this small batch on the plateau.
    No dropout: 1500 steps over the corpus are far from overfitting it."""
    config = common.get_config()
    config.model.size = "tiny"
    config.model.dtype = "float32"  # CPUs have no fast bfloat16 matmuls
    config.model.initializer_range = 0.08
    config.model.hidden_dropout = 0.0
    config.model.attention_dropout = 0.0
    config.data.demo_corpus = True
    config.data.max_seq_length = 64
    config.data.max_predictions_per_seq = 10
    config.data.shuffle_buffer = 2000
    config.train.batch_size = 32
    config.train.num_steps = 1500
    config.train.log_every_steps = 100
    config.train.eval_every_steps = 500
    config.train.eval_batches = 10
    config.train.eval_batch_size = 64
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_steps = 100
    config.checkpoint.save_every_steps = 500
    config.checkpoint.save_every_minutes = 0
    return config


def phase2(config) -> None:
    """Phase 2 of two-phase pretraining (module docstring), on top of a size's phase-1 config."""
    config.data.max_seq_length = 512  # the position table's full length
    config.data.max_predictions_per_seq = 80  # 15% of 512, rounded as NVIDIA does
    config.train.batch_size = 256  # 256 x 512 = the paper's 128k tokens per batch
    config.train.num_steps = 100_000  # the last 10% of the paper's 1M steps
    config.optimizer.learning_rate = 1e-4  # the phase-1 peak, warmed up again
    config.optimizer.warmup_steps = 10_000  # 10% of phase 2 (NVIDIA: 12.8%)
    config.checkpoint.init_optimizer = True  # params and Adam moments from config.init_from
    config.checkpoint.reset_step = True  # phase 2 counts its own steps and schedule from 0


def get_config(arg: str = "base"):
    if arg == "quickstart":
        return quickstart_config()
    size, flags = parse_arg(arg)
    config = common.get_config()
    config.model.size = size
    if "phase2" in flags:
        phase2(config)
    if "runlocal" in flags:
        config.train.batch_size = 16
        config.train.num_steps = 20
        config.train.log_every_steps = 5
        config.train.eval_every_steps = 10
        config.train.eval_batches = 2
        config.optimizer.warmup_steps = 5
        config.data.shuffle_buffer = 256
        config.checkpoint.save_every_steps = 10
        config.checkpoint.save_every_minutes = 0
    return config
