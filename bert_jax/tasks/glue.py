"""GLUE fine-tuning: `build(config, ...)` is the trainer's task for `--config=configs/glue.py:TASK`.

The architecture and the tokenizer come from `config.init_from` (a bert-jax run, a Hugging Face
directory or a Google TF checkpoint; `bert_jax/checkpoint/source.py`); a `config.model` field
that is set overrides the checkpoint's. The data comes from GLUE's TSV files
(`config.data.data_dir`) or from TensorFlow Datasets (`config.data.tfds`). The step count follows
from the training set's size and `train.num_epochs` unless `train.num_steps` is set; evaluation
runs on every dev split after each epoch unless `train.eval_every_steps` is set.
"""

from __future__ import annotations

import dataclasses

from bert_jax import paths
from bert_jax.checkpoint import source as checkpoint_source
from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig, preset
from bert_jax.tasks import glue_readers, sentence_batches
from bert_jax.tasks.base import StepPlan, TaskData
from bert_jax.tasks.classification import SequenceClassificationTask
from bert_jax.tasks.glue_tasks import GlueTask, glue_task
from bert_jax.tasks.text_features import Features, encode_pairs


def model_config(model, source: checkpoint_source.Source | None) -> BertConfig:
    """The source's architecture with every set `config.model` field over it; with no source,
    the `model.size` preset (training from scratch)."""
    fields = {k: v for k, v in model.items() if k not in ("size", "vocab_size") and v is not None}
    if source is None:
        if not model.size:
            raise UserError(
                "no architecture: set --config.init_from=CHECKPOINT (or model.size to train "
                "from scratch)"
            )
        return preset(model.size, "model.", vocab_size=model.vocab_size or 30522, **fields)
    base = dataclasses.asdict(source.config)
    if model.vocab_size:
        base["vocab_size"] = model.vocab_size
    return BertConfig.from_dict({**base, **fields})


def load_tokenizer(config, source: checkpoint_source.Source | None):
    """The tokenizer of `data.vocab`, else the one the checkpoint was trained with."""
    from bert_jax.text.load import load_tokenizer as load

    vocab = config.data.vocab or (source.vocab if source else None)
    if not vocab:
        where = f" ({source.path} has no vocab.txt beside it)" if source else ""
        raise UserError(f"no vocabulary{where}: set --config.data.vocab=PATH")
    return load(vocab, lowercase=source.lowercase if source else None)


def check_vocabulary(tokenizer, model: BertConfig, source) -> None:
    """The tokenizer must be the one the embedding table was trained with."""
    if tokenizer.vocab_size != model.vocab_size:
        raise UserError(
            f"vocabulary {tokenizer.path} has {tokenizer.vocab_size} entries but the model's "
            f"embedding table has {model.vocab_size} rows: not the checkpoint's vocabulary"
        )
    if source and source.vocab_fingerprint and source.vocab_fingerprint != tokenizer.fingerprint:
        raise UserError(
            f"vocabulary {tokenizer.path} is not the one {source.path} was trained with "
            "(fingerprints differ: another file or another casing)"
        )


def note_other_task(source, task: str, warn) -> None:
    """Say so when the checkpoint was fine-tuned for another task: its head is not used."""
    if source and source.task and source.task not in ("pretraining", task):
        warn(
            f"note: {source.path} was fine-tuned for {source.task}: its head is dropped, "
            f"a new {task.split('/')[-1]} head is trained"
        )


def from_checkpoint(config, task: str, warn):
    """(source, architecture, tokenizer) of `config.init_from` for fine-tuning `task`: the
    checkpoint's architecture under any set `config.model` field, its vocabulary (or
    `data.vocab`) checked against the embedding table, and `data.max_seq_length` checked against
    the position table. Every fine-tuning task starts here."""
    source = checkpoint_source.describe(config.init_from) if config.init_from else None
    note_other_task(source, task, warn)
    architecture = model_config(config.model, source)
    tokenizer = load_tokenizer(config, source)
    check_vocabulary(tokenizer, architecture, source)
    if config.data.max_seq_length > architecture.max_position_embeddings:
        raise UserError(
            f"data.max_seq_length {config.data.max_seq_length} exceeds the position table "
            f"({architecture.max_position_embeddings})"
        )
    return source, architecture, tokenizer


def generated(task: GlueTask, data) -> bool:
    """Whether the examples come from an embedded task's generator (no data_dir, no TFDS)."""
    return task.embedded and not data.data_dir and not data.tfds


def read_examples(task: GlueTask, data, split: str, warn):
    """A split's examples from the TSV files or TFDS (an embedded task without a data_dir: from
    its generator); skipped rows reported in one line."""
    if generated(task, data):
        return glue_readers.read_embedded(task, split)
    if data.tfds:
        return glue_readers.read_tfds_split(task, split, data.tfds_data_dir or None)
    if not data.data_dir:
        raise UserError(
            f"data.data_dir is empty: set --config.data.data_dir=GLUE_DIR (holding "
            f"{task.dir_name}/{task.files[split]}) or --config.data.tfds=True"
        )
    examples, skipped = glue_readers.read_split(task, data.data_dir, split)
    if skipped:
        shown = "; ".join(str(s) for s in skipped[:3])
        warn(f"warning: skipped {len(skipped)} malformed rows of {task.name} {split}: {shown}")
    return examples


@dataclasses.dataclass
class SentenceData(TaskData):
    """Encoded splits of one sentence (pair) task and how to batch them."""

    train_features: Features
    eval_features: dict[str, Features]
    batch_size: int
    eval_batch_size: int
    seed: int
    pad_multiple: int
    max_length: int
    feed: object
    _eval_batches: dict | None = None

    def train(self, state):
        return sentence_batches.TrainStream(
            self.train_features,
            self.batch_size,
            self.seed,
            self.pad_multiple,
            self.max_length,
            self.feed,
            state,
        )

    def stream_state(self, stream) -> dict:
        # Every process draws the same permutation: its own position speaks for all.
        return stream.state()

    @property
    def evaluation_splits(self) -> tuple[str, ...]:
        return tuple(self.eval_features)

    def evaluation(self) -> dict:
        if self._eval_batches is None:
            self._eval_batches = {
                split: self.batches(features) for split, features in self.eval_features.items()
            }
        return self._eval_batches

    def batches(self, features: Features) -> list[dict]:
        """Evaluation batches of any encoded split (dev, test, or lines to predict)."""
        return sentence_batches.eval_batches(
            features, self.eval_batch_size, self.pad_multiple, self.max_length, self.feed
        )


def keep_embedded_files(task: GlueTask, workdir, warn) -> None:
    """Write the generated files of an embedded task into WORKDIR/data (process 0), so the rows
    that predictions_dev.tsv numbers can be read beside it; what was trained on is the same
    text, generated in memory."""
    import jax

    from bert_jax.data import doc_source

    if jax.process_index() == 0:
        directory = doc_source.write(paths.join(workdir, "data"))
        where = paths.join(directory, task.dir_name)
        warn(f"note: {task.name} is generated from this Python's documentation (files: {where})")


def step_plan(config, num_train: int) -> StepPlan:
    t = config.train
    per_epoch = sentence_batches.steps_per_epoch(num_train, t.batch_size)
    if t.num_steps < 0 or t.eval_every_steps < 0 or t.num_epochs < 0:
        raise UserError("train.num_steps, num_epochs and eval_every_steps must not be negative")
    num_steps = t.num_steps or round(t.num_epochs * per_epoch)
    if num_steps < 1:
        raise UserError("train.num_epochs (or train.num_steps) gives no training step")
    return StepPlan(num_steps, t.eval_every_steps or per_epoch, steps_per_epoch=per_epoch)


def main_metric(task: GlueTask) -> str:
    """The evaluation key the best checkpoint is chosen by (`split/metric` with two dev
    splits: MNLI is chosen by its matched accuracy)."""
    if len(task.dev_splits) > 1:
        return f"{task.dev_splits[0]}/{task.main_metric}"
    return task.main_metric


def spec(config) -> GlueTask:
    name = config.task.removeprefix("glue/")
    task = glue_task(name)
    if task.predict_with:
        raise UserError(
            f"{task.name} has no training data: fine-tune {task.predict_with} "
            f"(configs/glue.py:{task.predict_with}); its run also predicts {task.name}"
        )
    return task


def build(config, workdir, feed, eval_batch_size: int, warn) -> SequenceClassificationTask:
    """The trainer's task for a GLUE config: checkpoint, tokenizer, data, step plan."""
    task = spec(config)
    source, architecture, tokenizer = from_checkpoint(config, f"glue/{task.name}", warn)
    data_cfg = config.data

    def encode(split):
        examples = read_examples(task, data_cfg, split, warn)
        return encode_pairs(tokenizer, examples, data_cfg.max_seq_length, task.is_regression)

    train = encode("train")
    if not len(train.input_ids):
        raise UserError(f"{task.name} train split holds no examples")
    dev = {split: encode(split) for split in task.dev_splits}
    if generated(task, data_cfg) and workdir:
        keep_embedded_files(task, workdir, warn)
    data = SentenceData(
        train_features=train,
        eval_features=dev,
        batch_size=config.train.batch_size,
        eval_batch_size=eval_batch_size,
        seed=data_cfg.seed,
        pad_multiple=data_cfg.pad_multiple,
        max_length=data_cfg.max_seq_length,
        feed=feed,
    )
    return GlueFinetune(
        spec=task,
        tokenizer=tokenizer,
        source=source,
        name=f"glue/{task.name}",
        model_config=architecture,
        num_labels=task.num_labels,
        metric_names=task.metrics,
        main_metric=main_metric(task),
        max_length=data_cfg.max_seq_length,
        data=data,
        steps=step_plan(config, len(train.input_ids)),
    )


class GlueFinetune(SequenceClassificationTask):
    """A GLUE task on the trainer; keeps what writing its outputs needs."""

    def __init__(self, spec: GlueTask, tokenizer, source, **kwargs):
        super().__init__(**kwargs)
        self.spec, self.tokenizer, self.source = spec, tokenizer, source
        self.label_names = spec.labels

    def checkpoint_metadata(self) -> dict:
        return {
            **super().checkpoint_metadata(),
            "vocab_fingerprint": self.tokenizer.fingerprint,
            "vocab": paths.absolute(self.tokenizer.path),
            "lowercase": self.tokenizer.lowercase,
            "labels": list(self.spec.labels) if self.spec.labels else None,
            "init_from": paths.absolute(self.source.path) if self.source else None,
        }
