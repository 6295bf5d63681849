"""Pretraining (MLM + NSP), the original BERT recipe: batch 256 x 128 tokens, 1M steps,
AdamW without bias correction at 1e-4, 10k warmup, linear decay from step 0.

  bert-jax pretrain --config=configs/pretrain.py:base --workdir=DIR \
      --config.data.data_dir=SHARDS [--config.train.batch_size=...] [--config.mesh.fsdp=...]

ARG: "quickstart" (a tiny model on the embedded demo corpus), or a model size (tiny mini small
medium base large L-x_H-y), optionally followed by
",runlocal": a few small steps that check a config end to end on a workstation.
Only the mesh and the batch size change between one CPU and a pod slice.
"""

from __future__ import annotations

from configs import common

SIZES = ("tiny", "mini", "small", "medium", "base", "large")
# L-2_H-128 ... L-12_H-768 (Google's compact BERTs) are accepted as well.


def parse_arg(arg: str) -> tuple[str, bool]:
    """ "base" -> ("base", False); "tiny,runlocal" -> ("tiny", True)."""
    parts = [p for p in (arg or "base").split(",") if p]
    size, flags = parts[0], set(parts[1:])
    unknown = flags - {"runlocal"}
    if unknown:
        raise ValueError(f"configs/pretrain.py: unknown option(s) {sorted(unknown)} in {arg!r}")
    if size not in SIZES and not size.startswith("L-"):
        raise ValueError(f"configs/pretrain.py: unknown size {size!r}; one of {SIZES} or L-x_H-y")
    return size, "runlocal" in flags


def quickstart_config():
    """A tiny BERT on the embedded demo corpus: the README's first command, minutes on a CPU."""
    config = common.get_config()
    config.model.size = "tiny"
    config.model.dtype = "float32"  # CPUs have no fast bfloat16 matmuls
    config.data.demo_corpus = True
    config.data.max_seq_length = 64
    config.data.max_predictions_per_seq = 10
    config.data.shuffle_buffer = 1000
    config.train.batch_size = 32
    config.train.num_steps = 400
    config.train.log_every_steps = 50
    config.train.eval_every_steps = 200
    config.train.eval_batches = 4
    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_steps = 40
    config.checkpoint.save_every_steps = 200
    config.checkpoint.save_every_minutes = 0
    return config


def get_config(arg: str = "base"):
    if arg == "quickstart":
        return quickstart_config()
    size, runlocal = parse_arg(arg)
    config = common.get_config()
    config.model.size = size
    if runlocal:
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
