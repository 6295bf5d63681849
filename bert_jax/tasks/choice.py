"""Multiple choice as a task of the trainer: SWAG (`build` is the task for `configs/swag.py`).

Model: `BertForMultipleChoice`: every choice is its own sequence `[CLS] context [SEP] ending
[SEP]` (BERT's pair truncation), the pooled [CLS] of each -> one score; the scores of a
question's choices are its logits. So multiple choice is classification over the choices:
the loss (mean cross-entropy over the real questions), the accuracy and the gathering of
predictions are `SequenceClassificationTask`'s, on logits [B, C].

Batches hold every choice of B questions: input arrays [B, C, L], L the longest choice of the
batch rounded up to `pad_multiple`; labels, weights and rows [B], per question. Training takes
its order, its resumable (epoch, batch) position and its weight-0 filler rows from
`sentence_batches.TrainStream`, run over the questions; evaluation sorts questions by their
longest choice. Every process builds the same global batch and keeps its rows (`feed.rows`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig
from bert_jax.model.heads import BertForMultipleChoice
from bert_jax.tasks import glue, sentence_batches, swag_data
from bert_jax.tasks.base import StepPlan, Task, TaskData
from bert_jax.tasks.classification import SequenceClassificationTask
from bert_jax.tasks.glue_readers import Example
from bert_jax.tasks.text_features import Features, encode_pairs
from bert_jax.trainer import flops

EVAL_SPLIT = "val"


# --- features -----------------------------------------------------------------------------------


@dataclasses.dataclass
class ChoiceFeatures:
    """Encoded questions: the C choices of question q are rows q*C .. q*C + C-1 of `choices`."""

    choices: Features  # ragged [CLS] context [SEP] ending [SEP] rows, question-major
    labels: np.ndarray  # int32 [N]: index of the right choice (-1: unlabelled)
    num_choices: int

    def __len__(self) -> int:
        return len(self.labels)

    def longest(self) -> np.ndarray:
        """int64 [N]: each question's longest choice, in tokens."""
        lengths = np.array([len(ids) for ids in self.choices.input_ids], np.int64)
        return lengths.reshape(len(self), self.num_choices).max(axis=1, initial=0)


def encode_choices(tokenizer, examples: list[swag_data.SwagExample], max_length: int):
    """Token and segment ids of every (context, ending) pair, as `encode_pairs` makes them."""
    counts = {len(example.endings) for example in examples}
    if len(counts) > 1:
        raise UserError(f"questions have different numbers of choices: {sorted(counts)}")
    num_choices = counts.pop() if counts else swag_data.NUM_CHOICES
    pairs = [
        Example(example.index, example.context, ending, None)
        for example in examples
        for ending in example.endings
    ]
    labels = [-1 if example.label is None else example.label for example in examples]
    return ChoiceFeatures(
        choices=encode_pairs(tokenizer, pairs, max_length, regression=False),
        labels=np.asarray(labels, np.int32),
        num_choices=num_choices,
    )


# --- batches ------------------------------------------------------------------------------------


def make_batch(features: ChoiceFeatures, rows: np.ndarray, size: int, multiple: int, max_length):
    """The global batch of questions `rows` (fewer than `size`: filled with weight-0 rows)."""
    rows = np.asarray(rows, np.int64)
    c = features.num_choices
    choice_rows = (rows[:, None] * c + np.arange(c)).reshape(-1)
    flat = sentence_batches.make_batch(
        features.choices, choice_rows, size * c, multiple, max_length
    )
    length = flat["input_ids"].shape[1]
    batch = {
        name: flat[name].reshape(size, c, length)
        for name in ("input_ids", "segment_ids", "input_mask")
    }
    labels = np.zeros((size,), np.int32)
    labels[: len(rows)] = features.labels[rows]
    weights = np.zeros((size,), np.float32)
    weights[: len(rows)] = 1.0
    row_ids = np.full((size,), -1, np.int32)
    row_ids[: len(rows)] = rows
    return {**batch, "labels": labels, "example_weights": weights, "rows": row_ids}


def _local(batch: dict, feed) -> dict:
    """This process's rows of a global batch."""
    if feed is None or feed.process_count == 1:
        return batch
    rows = feed.rows(batch["rows"].shape[0])
    return {name: value[rows] for name, value in batch.items()}


def _placeholders(count: int) -> Features:
    """One token per question: what `sentence_batches.TrainStream` needs to draw the order."""
    token = np.zeros(1, np.int32)
    return Features(
        input_ids=[token] * count,
        segment_ids=[token] * count,
        labels=np.zeros(count, np.int32),
        indices=np.arange(count),
        truncated=0,
    )


class TrainStream:
    """Endless training batches of questions; `state()` is the position to save. The order, the
    position and the filler rows are `sentence_batches.TrainStream`'s over the questions (the
    same permutation per (seed, epoch) as every sentence task)."""

    def __init__(
        self, features: ChoiceFeatures, batch_size, seed, multiple, max_length, feed, state
    ):
        self.features, self.batch_size = features, batch_size
        self.multiple, self.max_length, self.feed = multiple, max_length, feed
        # The whole global batch is drawn here (feed None): its padded length must be the
        # same on every process.
        self.order = sentence_batches.TrainStream(
            _placeholders(len(features)), batch_size, seed, 0, 1, None, state
        )

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        drawn = next(self.order)
        rows = drawn["rows"][drawn["example_weights"] > 0]
        batch = make_batch(self.features, rows, self.batch_size, self.multiple, self.max_length)
        return _local(batch, self.feed)

    def state(self) -> dict:
        return self.order.state()


def eval_batches(features: ChoiceFeatures, batch_size, multiple, max_length, feed) -> list[dict]:
    """Every question once, longest first (so batches of one shape run together)."""
    order = np.argsort(-features.longest(), kind="stable")
    return [
        _local(
            make_batch(features, order[i : i + batch_size], batch_size, multiple, max_length), feed
        )
        for i in range(0, len(order), batch_size)
    ]


@dataclasses.dataclass
class ChoiceData(glue.SentenceData):
    """`glue.SentenceData` holding `ChoiceFeatures`, batched per question."""

    def train(self, state):
        return TrainStream(
            self.train_features,
            self.batch_size,
            self.seed,
            self.pad_multiple,
            self.max_length,
            self.feed,
            state,
        )

    def batches(self, features: ChoiceFeatures) -> list[dict]:
        return eval_batches(
            features, self.eval_batch_size, self.pad_multiple, self.max_length, self.feed
        )


# --- the task -----------------------------------------------------------------------------------


class MultipleChoiceTask(SequenceClassificationTask):
    """`num_choices` candidate sequences per question, one right; scored by accuracy."""

    model_kind = "multiple_choice"

    def __init__(
        self,
        name: str,
        model_config: BertConfig,
        num_choices: int,
        max_length: int,
        data: TaskData | None = None,
        steps: StepPlan | None = None,
    ):
        if num_choices < 2:
            raise UserError(f"multiple choice needs at least 2 choices, got {num_choices}")
        super().__init__(
            name=name,
            model_config=model_config,
            num_labels=num_choices,
            metric_names=("accuracy",),
            main_metric="accuracy",
            max_length=max_length,
            data=data,
            steps=steps,
        )
        self.model = BertForMultipleChoice(model_config)
        self.num_choices = num_choices

    def example_batch(self) -> dict[str, np.ndarray]:
        ids = np.zeros((1, self.num_choices, self.max_length), np.int32)
        return {"input_ids": ids, "segment_ids": ids, "input_mask": ids}

    def step_flops(self, batch: dict) -> float:
        questions, choices, length = batch["input_ids"].shape
        return flops.train_flops(self.model_config, questions * choices, length, 0)

    def checkpoint_metadata(self) -> dict:
        # Task's, not the parent's: `num_labels` there would read as a count of classes.
        return {**Task.checkpoint_metadata(self), "num_choices": self.num_choices}

    def describe(self) -> str:
        c = self.model_config
        return (
            f"finetune {self.name} ({self.num_choices} choices): {c.num_layers} layers, "
            f"hidden {c.hidden_size}, max length {self.max_length}"
        )


class SwagFinetune(MultipleChoiceTask):
    """SWAG on the trainer; keeps what its checkpoints record about the vocabulary."""

    def __init__(self, tokenizer, source, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer, self.source = tokenizer, source

    def checkpoint_metadata(self) -> dict:
        return {
            **super().checkpoint_metadata(),
            "vocab_fingerprint": self.tokenizer.fingerprint,
            "vocab": paths.absolute(self.tokenizer.path),
            "lowercase": self.tokenizer.lowercase,
            # The outputs are scores of the choices in their given order, not named classes.
            "labels": None,
            "init_from": paths.absolute(self.source.path) if self.source else None,
        }


def build(config, workdir, feed, eval_batch_size: int, warn) -> SwagFinetune:
    """The trainer's task for `configs/swag.py`: checkpoint, tokenizer, data, step plan."""
    if config.task != "swag":
        raise UserError(f"bert_jax.tasks.choice builds the task 'swag', not {config.task!r}")
    source, architecture, tokenizer = glue.from_checkpoint(config, "swag", warn)
    data_cfg = config.data
    if not data_cfg.data_dir:
        raise UserError(
            "data.data_dir is empty: set --config.data.data_dir=SWAG_DIR (holding train.csv "
            "and val.csv)"
        )

    def encode(split):
        examples = swag_data.read_split(data_cfg.data_dir, split)
        return encode_choices(tokenizer, examples, data_cfg.max_seq_length)

    train, dev = encode("train"), encode(EVAL_SPLIT)
    for split, features in (("train", train), (EVAL_SPLIT, dev)):
        if not len(features):
            raise UserError(f"SWAG {split} split holds no examples")
    data = ChoiceData(
        train_features=train,
        eval_features={EVAL_SPLIT: dev},
        batch_size=config.train.batch_size,
        eval_batch_size=eval_batch_size,
        seed=data_cfg.seed,
        pad_multiple=data_cfg.pad_multiple,
        max_length=data_cfg.max_seq_length,
        feed=feed,
    )
    return SwagFinetune(
        tokenizer=tokenizer,
        source=source,
        name="swag",
        model_config=architecture,
        num_choices=train.num_choices,
        max_length=data_cfg.max_seq_length,
        data=data,
        steps=glue.step_plan(config, len(train)),
    )
