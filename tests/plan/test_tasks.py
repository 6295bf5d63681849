"""The planned global batch of every task equals, field for field (name, dtype, shape), the
batch its own data stream makes: the synthetic pretraining batches, and each fine-tuning
family's batch maker on a hand-made example at the full length."""

import numpy as np
import pytest

from bert_jax.cli import config_args
from bert_jax.data import synthetic as synthetic_data
from bert_jax.errors import UserError
from bert_jax.plan import tasks
from bert_jax.tasks import choice, ner, sentence_batches
from bert_jax.tasks.text_features import Features
from bert_jax.tasks.token_classification import WordFeatures
from tests.conftest import REPO

ROWS, LENGTH = 8, 32


def layout(batch: dict) -> dict:
    return {name: (value.shape, value.dtype) for name, value in batch.items()}


def one_row(labels: np.ndarray, rows: int = 1) -> Features:
    """`rows` examples of LENGTH tokens (so batches pad to the full length)."""
    ids = [np.arange(LENGTH, dtype=np.int32) for _ in range(rows)]
    return Features(ids, [np.zeros(LENGTH, np.int32)] * rows, labels, np.arange(rows), 0)


def finetune_task(spec: str):
    config = config_args.load(
        f"{REPO}/configs/{spec}",
        ["--config.model.size=tiny", f"--config.data.max_seq_length={LENGTH}"],
    )
    return tasks.finetuning_task(config, None, None, ROWS, print)


def made_batch(features, maker=sentence_batches.make_batch):
    return maker(features, np.arange(1), ROWS, 0, LENGTH)


@pytest.mark.parametrize(
    ("spec", "labels"),
    [
        ("glue.py:mrpc", np.zeros(1, np.int32)),
        ("glue.py:stsb", np.zeros(1, np.float32)),  # regression: a score per example
        ("squad.py:v1.1", np.zeros((1, 2), np.int32)),  # start and end token
    ],
)
def test_sentence_tasks(spec, labels):
    planned = tasks.train_batch(finetune_task(spec), ROWS)
    assert planned == layout(made_batch(one_row(labels)))


def test_ner_adds_token_labels():
    words = WordFeatures(
        input_ids=[np.arange(LENGTH, dtype=np.int32)],
        segment_ids=[np.zeros(LENGTH, np.int32)],
        labels=np.zeros(1, np.int32),
        positions=[np.array([1, 2], np.int32)],
        words=[np.array([0, 1])],
        label_ids=[np.array([0, 1], np.int32)],
        sentence=np.zeros(1, np.int64),
        tags=[("O", "B-PER")],
    )
    real = ner.with_token_labels(made_batch(words), words)
    assert tasks.train_batch(finetune_task("ner.py:conll2003"), ROWS) == layout(real)


def test_multiple_choice_batches_questions():
    features = choice.ChoiceFeatures(one_row(np.zeros(4, np.int32), 4), np.zeros(1, np.int32), 4)
    real = made_batch(features, choice.make_batch)
    assert tasks.train_batch(finetune_task("swag.py"), ROWS) == layout(real)


def test_pretraining_plans_the_synthetic_batches_of_its_builder():
    config = config_args.load(f"{REPO}/configs/pretrain.py:tiny", [])
    planned_config = tasks.for_planning(config)
    assert planned_config.data.synthetic and not config.data.synthetic  # a copy
    assert tasks.builder(config).__module__ == "bert_jax.tasks.pretraining"
    task = tasks.builder(config)(planned_config, None, _Feed(), ROWS, print)
    d = config.data
    real = synthetic_data.global_batch(0, 0, ROWS, d.max_seq_length, d.max_predictions_per_seq, 50)
    assert tasks.train_batch(task, ROWS) == layout(real)


class _Feed:
    process_count = 1

    def rows(self, count):
        return np.arange(count)


def test_finetuning_without_an_architecture_says_what_to_set():
    config = config_args.load(f"{REPO}/configs/glue.py:mrpc", [])
    with pytest.raises(UserError, match="no architecture: set --config.init_from"):
        tasks.finetuning_task(config, None, None, ROWS, print)
