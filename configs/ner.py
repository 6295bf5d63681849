"""CoNLL-2003 NER fine-tuning: batch 32, 3 epochs, learning rate 5e-5 with warmup over the first
10% of the steps then linear decay, max length 128, the same AdamW as GLUE (weight decay 0.01,
never on LayerNorm or biases). The label of each word sits on its first piece.

  bert-jax finetune --config=configs/ner.py:conll2003 --workdir=DIR \
      --config.init_from=CHECKPOINT --config.data.data_dir=CONLL_DIR

ARG: conll2003, optionally followed by ",runlocal" (a few steps on a small batch, to check a setup
end to end). CONLL_DIR holds the original eng.train, eng.testa and eng.testb; training uses
eng.train, evaluation eng.testa (the dev set: it picks the best checkpoint) and eng.testb.
CHECKPOINT: as for configs/glue.py (its architecture and vocabulary are used).
"""

from __future__ import annotations

import ml_collections

from configs import common, glue

TASKS = ("conll2003",)


def data_config() -> ml_collections.ConfigDict:
    d = glue.data_config()
    d.data_dir = ""  # the folder holding eng.train, eng.testa, eng.testb (CoNLL-2003 layout)
    d.tfds = False  # read TensorFlow Datasets conll2003 (train, dev, test) instead of the files
    d.scheme = "iob1"  # tags the model learns and predicts: iob1 (the original files) | iob2
    return d


def parse_arg(arg: str) -> tuple[str, set[str]]:
    parts = [p for p in (arg or "").split(",") if p]
    if not parts or parts[0].lower() not in TASKS:
        raise ValueError(f"configs/ner.py needs a task: one of {', '.join(TASKS)}, not {arg!r}")
    flags = set(parts[1:])
    if flags - {"runlocal"}:
        raise ValueError(f"configs/ner.py: unknown option(s) {sorted(flags - {'runlocal'})}")
    return parts[0].lower(), flags


def get_config(arg: str = "conll2003") -> ml_collections.ConfigDict:
    task, flags = parse_arg(arg)
    config = common.get_config()
    config.task = f"ner/{task}"  # what is fine-tuned (bert_jax/tasks/ner.py)
    config.model = glue.model_config()
    config.data = data_config()
    t = config.train
    t.batch_size = 32  # sentences (rows) per optimizer step, all hosts together
    t.num_epochs = 3.0  # passes over the training set (used when num_steps is 0)
    t.num_steps = 0  # 0: num_epochs x steps per epoch
    t.eval_every_steps = 0  # 0: after every epoch (and at the end) on eng.testa and eng.testb
    t.log_every_steps = 50
    t.eval_batch_size = 64  # evaluation rows per batch (padding rows weigh nothing)
    o = config.optimizer
    o.learning_rate = 5e-5
    o.warmup_fraction = 0.1  # warm up over the first 10% of the steps
    o.warmup_steps = 0
    c = config.checkpoint
    c.save_every_steps = 0  # every evaluation saves (the best checkpoint is kept by testa F1)
    c.save_every_minutes = 30
    c.keep_last = 1  # the last checkpoint, besides the best one
    c.keep_every = 0
    if "runlocal" in flags:
        t.batch_size = 8
        t.num_steps = 10
        t.eval_every_steps = 5
        t.log_every_steps = 5
    return config
