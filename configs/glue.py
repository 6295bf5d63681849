"""GLUE fine-tuning, the BERT paper's recipe (section 4.1 and appendix A.3): batch 32, 3 epochs,
warmup over the first 10% of the steps then linear decay, max length 128, dropout 0.1, the
same AdamW as pretraining; one learning rate per task from the paper's grid {2, 3, 5}e-5.

  bert-jax finetune --config=configs/glue.py:mrpc --workdir=DIR \
      --config.init_from=CHECKPOINT --config.data.data_dir=GLUE_DIR

ARG: a GLUE task (cola sst2 mrpc stsb qqp mnli qnli rte wnli; AX is predicted by the mnli run),
or `docsource`, the embedded task of the quickstart (is a sentence from Python's language
reference or from a library docstring? generated when data.data_dir is empty), optionally
followed by ",runlocal" (a few steps on a small batch, to check a setup end to end).

  bert-jax finetune --config=configs/glue.py:docsource --workdir=DIR \
      --config.init_from=workdir/quickstart
CHECKPOINT: a bert-jax workdir or step directory, a Hugging Face BERT directory or a Google TF
checkpoint; the architecture and the vocabulary come from it (config.model fields override).
The number of steps follows from the training set: num_epochs x ceil(examples / batch_size).
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from configs import common

# task -> (learning rate, epochs). Learning rates from the paper's grid, one per task: the small
# sets (MRPC, STS-B, RTE, CoLA, WNLI) take the largest that fine-tunes stably from BERT-base;
# the large ones the middle value.
TASK_DEFAULTS = {
    "cola": (2e-5, 3),
    "sst2": (2e-5, 3),
    "mrpc": (5e-5, 3),
    "stsb": (5e-5, 3),
    "qqp": (3e-5, 3),
    "mnli": (3e-5, 3),
    "qnli": (3e-5, 3),
    "rte": (3e-5, 3),
    "wnli": (2e-5, 3),
    # The embedded task (bert_jax/data/doc_source.py), set for the quickstart's tiny model: a
    # 2-layer encoder fine-tunes with a larger step than BERT-base.
    "docsource": (2e-4, 3),
}
# Sentences of the embedded task are short: 64 tokens hold nearly all of them whole.
SHORT_SENTENCE_TASKS = {"docsource": 64}

# config.model fields that describe the architecture, with their types: None (the default
# here) takes the checkpoint's.
ARCHITECTURE_FIELDS = {
    "hidden_size": int,
    "num_layers": int,
    "num_heads": int,
    "intermediate_size": int,
    "max_position_embeddings": int,
    "type_vocab_size": int,
    "layer_norm_eps": float,
    "gelu_approximate": bool,
}


def model_config() -> ml_collections.ConfigDict:
    """common.model_config with the architecture left to the checkpoint."""
    m = ml_collections.ConfigDict()
    for key, value in common.model_config().items():
        m[key] = placeholder(ARCHITECTURE_FIELDS[key]) if key in ARCHITECTURE_FIELDS else value
    m.size = ""  # "": the init_from checkpoint's architecture; a preset: train from scratch
    m.dtype = "float32"  # fine-tuning as released; bfloat16 on TPU/GPU for speed
    return m


def data_config() -> ml_collections.ConfigDict:
    d = ml_collections.ConfigDict()
    d.data_dir = ""  # GLUE's folder (holding MRPC/train.tsv ...), the task's; docsource: optional
    d.tfds = False  # read TensorFlow Datasets glue/TASK instead of the TSV files
    d.tfds_data_dir = ""  # TFDS data_dir ("": TFDS's default, downloading if needed)
    d.vocab = ""  # vocab.txt / .model; "": the one the init_from checkpoint was trained with
    d.max_seq_length = 128  # tokens per example, [CLS] and [SEP]s included (pairs cut as BERT)
    d.pad_multiple = 32  # pad each batch to its longest row rounded up to this (0: exactly)
    d.seed = 0  # the order of the training examples, epoch by epoch
    return d


def parse_arg(arg: str) -> tuple[str, set[str]]:
    parts = [p for p in (arg or "").split(",") if p]
    if not parts:
        raise ValueError(f"configs/glue.py needs a task: one of {', '.join(TASK_DEFAULTS)}")
    task, flags = parts[0].lower().replace("-", ""), set(parts[1:])
    if task not in TASK_DEFAULTS:
        hint = " (AX is predicted by the mnli run)" if task == "ax" else ""
        raise ValueError(
            f"configs/glue.py: unknown task {parts[0]!r}{hint}; one of {', '.join(TASK_DEFAULTS)}"
        )
    if flags - {"runlocal"}:
        raise ValueError(f"configs/glue.py: unknown option(s) {sorted(flags - {'runlocal'})}")
    return task, flags


def get_config(arg: str = "mrpc") -> ml_collections.ConfigDict:
    task, flags = parse_arg(arg)
    learning_rate, epochs = TASK_DEFAULTS[task]
    config = common.get_config()
    config.task = f"glue/{task}"  # what is fine-tuned (bert_jax/tasks/glue_tasks.py)
    config.model = model_config()
    config.data = data_config()
    config.data.max_seq_length = SHORT_SENTENCE_TASKS.get(task, config.data.max_seq_length)
    t = config.train
    t.batch_size = 32  # examples per optimizer step, all hosts together
    t.num_epochs = float(epochs)  # passes over the training set (used when num_steps is 0)
    t.num_steps = 0  # 0: num_epochs x steps per epoch
    t.eval_every_steps = 0  # 0: after every epoch (and at the end) on every dev split
    t.log_every_steps = 50
    t.eval_batch_size = 64  # evaluation examples per batch (padding rows weigh nothing)
    o = config.optimizer
    o.learning_rate = learning_rate
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
