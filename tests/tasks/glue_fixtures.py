"""A tiny GLUE world for fine-tuning tests, with no shared data: a 59-word vocabulary, a random
2-layer BERT saved in Hugging Face layout, and MRPC-layout TSV files whose label is learnable
(1 when both sentences start with the same word)."""

from __future__ import annotations

import pathlib

import flax.linen as nn
import jax
import numpy as np

from bert_jax.interop import hf
from bert_jax.model.config import BertConfig
from bert_jax.tasks.pretraining import PretrainingTask

WORDS = [f"w{i}" for i in range(59)]  # 64 rows: splits over a tensor axis
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CONFIG = BertConfig(
    vocab_size=len(SPECIAL) + len(WORDS),
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
)
MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"


def write_vocab(path: pathlib.Path) -> pathlib.Path:
    path.write_text("\n".join(SPECIAL + WORDS) + "\n")
    return path


def write_checkpoint(directory: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A random BertForPreTraining in Hugging Face layout, with its vocab.txt."""
    task = PretrainingTask(CONFIG, 16, 2)
    params = task.init_params(jax.random.PRNGKey(seed), task.example_batch())
    params = jax.tree.map(np.asarray, jax.device_get(nn.unbox(params)))
    vocab = write_vocab(directory.parent / "vocab.txt")
    hf.save_hf(params, CONFIG, directory, vocab, lowercase=True)
    return directory


def sentence(rng, first: str) -> str:
    return " ".join([first, *rng.choice(WORDS, size=rng.integers(2, 12))])


def mrpc_rows(rng, n: int) -> list[tuple[int, str, str]]:
    rows = []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        a_first = rng.choice(WORDS[:6])
        b_first = a_first if label else rng.choice([w for w in WORDS[:6] if w != a_first])
        rows.append((label, sentence(rng, a_first), sentence(rng, b_first)))
    return rows


def write_mrpc(directory: pathlib.Path, train=48, dev=21, test=10, seed=0) -> pathlib.Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("dev", dev)):
        lines = [MRPC_HEADER] + [
            f"{label}\t{i}\t{i + 1}\t{a}\t{b}" for i, (label, a, b) in enumerate(mrpc_rows(rng, n))
        ]
        (directory / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    lines = ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"] + [
        f"{i}\t{i}\t{i + 1}\t{a}\t{b}" for i, (_, a, b) in enumerate(mrpc_rows(rng, test))
    ]
    (directory / "test.tsv").write_text("\n".join(lines) + "\n")
    return directory


def glue_world(root: pathlib.Path, **sizes) -> tuple[pathlib.Path, pathlib.Path]:
    """(checkpoint directory, GLUE data_dir) under `root`."""
    checkpoint = write_checkpoint(root / "checkpoint")
    write_mrpc(root / "glue" / "MRPC", **sizes)
    return checkpoint, root / "glue"


def finetune_config(checkpoint, data_dir, **overrides):
    """configs/glue.py:mrpc on the tiny world: batch 8, 2 epochs of 48 examples (12 steps)."""
    from configs import glue

    config = glue.get_config("mrpc")
    config.init_from = str(checkpoint)
    config.data.data_dir = str(data_dir)
    config.data.max_seq_length = 32
    config.data.pad_multiple = 32  # one shape: one compilation per step function
    config.train.batch_size = 8
    config.train.eval_batch_size = 8
    config.train.num_epochs = 2.0
    config.train.log_every_steps = 3
    config.optimizer.learning_rate = 1e-3
    config.checkpoint.save_every_minutes = 0
    for key, value in overrides.items():
        section, field = key.split(".")
        config[section][field] = value
    config.lock()
    return config
