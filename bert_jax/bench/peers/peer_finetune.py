"""Peer fine-tuning step on CPU: Hugging Face transformers 4.x `BertForSequenceClassification`
(PyTorch, eager, 2 labels) on the batches `bert-jax bench finetune` wrote, in their order:
AdamW (lr 5e-5, weight decay 0.01 except LayerNorm weights and biases, as the reference
fine-tuning script), gradients clipped to global norm 1.0, train mode (dropout on), fp32.

Each batch is padded to its own longest row, as `DataCollatorWithPadding` pads (no multiple).
Prints one line: sequences per second, seconds per step (the mean over every batch of the file,
timed after WARMUP untimed steps on its first batches), the model FLOP/s and FLOPs per step of
the work done at those padded lengths, and the mean padded length. FLOPs are counted as
`bert_jax/trainer/flops.py` counts them (2 per multiply-add, backward = 2 x forward;
tests/bench/test_peer_scripts.py checks that the two counts agree).

Standalone: runs in its own virtual environment, without bert-jax installed:
  pip install torch==2.13.0 "transformers<5" numpy
  python peer_finetune.py BATCHES_NPZ [MODEL_DIR]
MODEL_DIR: a Hugging Face BERT directory to load the encoder from; without it the model is
randomly initialised with the architecture stored in the file.
"""

import json
import os
import sys
import time

WARMUP = 2
LEARNING_RATE, WEIGHT_DECAY, CLIP_NORM = 5e-5, 0.01, 1.0
NUM_LABELS = 2
# Parameters exempt from weight decay, by name (the reference fine-tuning script's list).
NO_DECAY = ("bias", "LayerNorm.weight")


def model_flops(layers, hidden, mlp, batch, seq):
    """Train-step FLOPs of sequence classification at padded length `seq`: encoder matmuls and
    attention per token, pooler + 2-way classifier per sequence; forward x 3 for forward +
    backward."""
    per_token = layers * (2 * (4 * hidden * hidden + 2 * hidden * mlp) + 4 * seq * hidden)
    pooler = 2 * (hidden * hidden + NUM_LABELS * hidden)
    return 3.0 * batch * (seq * per_token + pooler)


def batch_flops(architecture, batch):
    """`model_flops` of one padded batch of `load_batches`."""
    rows, seq = batch["input_ids"].shape
    a = architecture
    return model_flops(a["num_layers"], a["hidden_size"], a["intermediate_size"], rows, seq)


def load_batches(path):
    """(architecture dict, batches): each batch a dict of numpy arrays cut to its longest row,
    in the file's order. Reads only numpy, so the batch layout is testable without torch."""
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        architecture = json.loads(str(data["architecture"]))
        size = int(data["batch_size"])
        ids, segments, lengths, labels = (
            data[k] for k in ("input_ids", "segment_ids", "lengths", "labels")
        )
    batches = []
    for start in range(0, len(lengths), size):
        rows = slice(start, start + size)
        longest = int(lengths[rows].max())
        mask = np.arange(longest)[None, :] < lengths[rows][:, None]
        batches.append(
            {
                "input_ids": ids[rows, :longest],
                "token_type_ids": segments[rows, :longest],
                "attention_mask": mask.astype(np.int64),
                "labels": labels[rows],
            }
        )
    return architecture, batches


def build_model(architecture, model_dir):
    """The classifier from `model_dir` (new head) or randomly initialised; checked against the
    architecture bert-jax used, so both sides train the same shape."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    if model_dir:
        model = BertForSequenceClassification.from_pretrained(model_dir, num_labels=NUM_LABELS)
    else:
        config = BertConfig(
            vocab_size=architecture["vocab_size"],
            hidden_size=architecture["hidden_size"],
            num_hidden_layers=architecture["num_layers"],
            num_attention_heads=architecture["num_heads"],
            intermediate_size=architecture["intermediate_size"],
            max_position_embeddings=architecture["max_position_embeddings"],
            type_vocab_size=architecture["type_vocab_size"],
            hidden_dropout_prob=architecture["hidden_dropout"],
            attention_probs_dropout_prob=architecture["attention_dropout"],
            num_labels=NUM_LABELS,
        )
        model = BertForSequenceClassification(config)
    c = model.config
    loaded = {
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "num_layers": c.num_hidden_layers,
        "num_heads": c.num_attention_heads,
        "intermediate_size": c.intermediate_size,
    }
    differs = {k: (v, architecture[k]) for k, v in loaded.items() if architecture[k] != v}
    if differs:
        sys.exit(f"peer_finetune: {model_dir} differs from the batches' model: {differs}")
    return model


def train_step(model):
    """`run(batch)`: one AdamW step with clipping, in train mode."""
    import torch

    model.train()
    named = list(model.named_parameters())
    groups = [
        {
            "params": [p for n, p in named if not any(k in n for k in NO_DECAY)],
            "weight_decay": WEIGHT_DECAY,
        },
        {"params": [p for n, p in named if any(k in n for k in NO_DECAY)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LEARNING_RATE)

    def run(batch):
        out = model(**batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        opt.step()
        opt.zero_grad()

    return run


def main(argv):
    import torch

    if not argv:
        sys.exit("usage: peer_finetune.py BATCHES_NPZ [MODEL_DIR]")
    torch.set_num_threads(os.cpu_count())
    architecture, batches = load_batches(argv[0])
    model_dir = argv[1] if len(argv) > 1 else None
    run = train_step(build_model(architecture, model_dir))
    # Tensors are made before timing, as bert-jax places its batches before timing.
    tensors = [{k: torch.from_numpy(v).long() for k, v in b.items()} for b in batches]
    for batch in tensors[:WARMUP]:
        run(batch)
    start = time.perf_counter()
    for batch in tensors:
        run(batch)
    seconds = time.perf_counter() - start

    rows = sum(len(b["labels"]) for b in batches)
    lengths = [b["input_ids"].shape[1] for b in batches]
    flops = sum(batch_flops(architecture, b) for b in batches)
    steps = len(batches)
    print(
        f"hf-torch BertForSequenceClassification: {rows / seconds:.2f} seq/s  "
        f"{seconds / steps:.4f} s/step  ({flops / seconds / 1e9:.3f} model GFLOP/s, "
        f"{flops / steps / 1e9:.4f} GFLOP/step)  mean padded length {sum(lengths) / steps:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:3])
