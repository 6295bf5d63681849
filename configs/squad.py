"""SQuAD fine-tuning, the BERT paper's recipe (section 4.2-4.3): v1.1 3 epochs at batch 32,
v2.0 2 epochs at batch 48, learning rate 5e-5, warmup over the first 10% of the steps then
linear decay; windows of 384 tokens with a stride of 128 and questions cut to 64 tokens.

  bert-jax finetune --config=configs/squad.py:v1.1 --workdir=DIR \
      --config.init_from=CHECKPOINT --config.data.data_dir=SQUAD_DIR

ARG: v1.1 or v2.0, optionally followed by ",runlocal" (a few steps on a small batch).
SQUAD_DIR holds the official files (train-v1.1.json and dev-v1.1.json, or the v2.0 pair);
`data.train_file` / `data.dev_file` name other files, `data.train_articles` /
`data.dev_articles` take a slice of a file's articles ("0:8", "-10:"), and `data.tfds=True`
reads TensorFlow Datasets squad/v1.1 or squad/v2.0 instead.
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from configs import common
from configs.glue import data_config as sentence_data_config
from configs.glue import model_config

# version -> (learning rate, epochs, batch size)
VERSION_DEFAULTS = {"v1.1": (5e-5, 3, 32), "v2.0": (5e-5, 2, 48)}


def data_config() -> ml_collections.ConfigDict:
    d = sentence_data_config()
    d.data_dir = ""  # folder holding the official train-vX.json / dev-vX.json
    d.train_file = ""  # "": DATA_DIR/train-vX.json
    d.dev_file = ""  # "": DATA_DIR/dev-vX.json
    d.train_articles = ""  # a slice of the training file's articles ("": all of them)
    d.dev_articles = ""  # a slice of the dev file's articles ("": all of them)
    d.max_seq_length = 384  # tokens per window: [CLS] question [SEP] context piece [SEP]
    d.doc_stride = 128  # tokens between the starts of consecutive windows of a context
    d.max_query_length = 64  # questions are cut to this many tokens
    d.tfds = False  # read TensorFlow Datasets squad/v1.1 or squad/v2.0 instead of the JSON files
    return d


def decode_config() -> ml_collections.ConfigDict:
    d = ml_collections.ConfigDict()
    d.n_best = 20  # candidate answers kept per question (nbest.json)
    d.max_answer_length = 30  # tokens
    # v2.0: predict "no answer" when null score - best span score exceeds this; None: the
    # threshold that maximises F1 on the dev set (the official script's best_f1_thresh).
    d.null_threshold = placeholder(float)
    return d


def parse_arg(arg: str) -> tuple[str, set[str]]:
    parts = [p for p in (arg or "").split(",") if p]
    if not parts or parts[0] not in VERSION_DEFAULTS:
        shown = parts[0] if parts else ""
        raise ValueError(
            f"configs/squad.py: unknown version {shown!r}; one of {', '.join(VERSION_DEFAULTS)}"
        )
    flags = set(parts[1:])
    if flags - {"runlocal"}:
        raise ValueError(f"configs/squad.py: unknown option(s) {sorted(flags - {'runlocal'})}")
    return parts[0], flags


def get_config(arg: str = "v1.1") -> ml_collections.ConfigDict:
    version, flags = parse_arg(arg)
    learning_rate, epochs, batch_size = VERSION_DEFAULTS[version]
    config = common.get_config()
    config.task = f"squad/{version}"  # what is fine-tuned (bert_jax/tasks/squad.py)
    config.model = model_config()
    config.data = data_config()
    config.decode = decode_config()
    t = config.train
    t.batch_size = batch_size  # windows per optimizer step, all hosts together
    t.num_epochs = float(epochs)  # passes over the training windows (used when num_steps is 0)
    t.num_steps = 0
    t.eval_every_steps = 0  # 0: after every epoch (and at the end)
    t.log_every_steps = 50
    t.eval_batch_size = 64
    o = config.optimizer
    o.learning_rate = learning_rate
    o.warmup_fraction = 0.1
    o.warmup_steps = 0
    c = config.checkpoint
    c.save_every_steps = 0
    c.save_every_minutes = 30
    c.keep_last = 1
    c.keep_every = 0
    if "runlocal" in flags:
        t.batch_size = 8
        t.num_steps = 10
        t.eval_every_steps = 5
        t.log_every_steps = 5
    return config
