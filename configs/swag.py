"""SWAG multiple choice, the BERT paper's recipe (section 4.4): batch 16, 3 epochs, learning
rate 2e-5; warmup over the first 10% of the steps then linear decay, max length 128, dropout
0.1, the same AdamW as pretraining.

  bert-jax finetune --config=configs/swag.py --workdir=DIR \
      --config.init_from=CHECKPOINT --config.data.data_dir=SWAG_DIR

SWAG_DIR holds the dataset's train.csv and val.csv (val is the evaluation split). ARG: "" or
"runlocal" (a few steps on a small batch, to check a setup end to end). CHECKPOINT: a bert-jax
workdir or step directory, a Hugging Face BERT directory or a Google TF checkpoint; the
architecture and the vocabulary come from it (config.model fields override).
"""

from __future__ import annotations

from configs import common, glue


def parse_arg(arg: str) -> set[str]:
    flags = {p for p in (arg or "").split(",") if p}
    if flags - {"runlocal"}:
        raise ValueError(f"configs/swag.py: unknown option(s) {sorted(flags - {'runlocal'})}")
    return flags


def get_config(arg: str = ""):
    flags = parse_arg(arg)
    config = common.get_config()
    config.task = "swag"  # what is fine-tuned (bert_jax/tasks/choice.py)
    config.model = glue.model_config()
    config.data = glue.data_config()
    # SWAG is read from its CSV files only.
    del config.data["tfds"]
    del config.data["tfds_data_dir"]
    t = config.train
    t.batch_size = 16  # questions per optimizer step (4 sequences each), all hosts together
    t.num_epochs = 3.0  # passes over the training set (used when num_steps is 0)
    t.num_steps = 0  # 0: num_epochs x steps per epoch
    t.eval_every_steps = 0  # 0: after every epoch (and at the end) on val.csv
    t.log_every_steps = 50
    t.eval_batch_size = 32  # evaluation questions per batch (padding rows weigh nothing)
    o = config.optimizer
    o.learning_rate = 2e-5
    o.warmup_fraction = 0.1  # warm up over the first 10% of the steps
    o.warmup_steps = 0
    c = config.checkpoint
    c.save_every_steps = 0  # every evaluation saves (the best checkpoint is kept by its score)
    c.save_every_minutes = 30
    c.keep_last = 1  # the last checkpoint, besides the best one
    c.keep_every = 0
    if "runlocal" in flags:
        t.batch_size = 8
        t.num_steps = 10
        t.eval_every_steps = 5
        t.log_every_steps = 5
    return config
