"""Baselines beside the final scores: the unigram MLM accuracy, the majority NSP label and the
majority class, checked on hand-worked batches and against scikit-learn."""

import collections

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from bert_jax.model.config import preset
from bert_jax.tasks import baselines
from bert_jax.tasks.classification import SequenceClassificationTask
from bert_jax.tasks.pretraining import PretrainingTask
from configs import pretrain


class FakeData:
    """Evaluation splits of fixed batches (what a task's data gives the loop)."""

    def __init__(self, splits, token_text=None):
        self.splits, self.token_text = splits, token_text

    @property
    def has_eval(self):
        return bool(self.splits)

    def evaluation(self):
        return self.splits


def pretraining_batch(mlm_ids, mlm_weights, nsp_label, example_weights):
    return {
        "mlm_ids": np.array(mlm_ids, np.int32),
        "mlm_weights": np.array(mlm_weights, np.float32),
        "nsp_label": np.array(nsp_label, np.int32),
        "example_weights": np.array(example_weights, np.float32),
    }


# Two eval batches: masked targets 7 7 5 | 5 7 9 (weight 1); 5 5 5 are unused slots (weight 0);
# the last row of the second batch is padding (its NSP label does not count).
BATCHES = [
    pretraining_batch([[7, 7, 5], [5, 5, 5]], [[1, 1, 1], [0, 0, 0]], [0, 1], [1, 1]),
    pretraining_batch([[5, 7, 9], [5, 5, 5]], [[1, 1, 1], [0, 0, 0]], [1, 1], [1, 0]),
]


def test_most_frequent_counts_weighted_entries_and_breaks_ties_to_the_smallest():
    assert baselines.most_frequent(np.array([3, 1, 1, 3, 2]), np.ones(5)) == (1, 0.4)
    assert baselines.most_frequent(np.array([3, 1, 1, 3]), np.array([1, 0, 0, 1])) == (3, 1.0)
    assert baselines.most_frequent(np.array([4]), np.array([0])) == (0, 0.0)


def test_pretraining_baselines_by_hand():
    found = baselines.pretraining(BATCHES, nsp=True, token_text={7: "the"}.get)
    # Targets 7 7 5 5 7 9: token 7 is 3 of 6. NSP labels of real rows 0 1 1: NotNext 2 of 3.
    assert found["mlm_accuracy"] == (0.5, "unigram: always 'the'")
    assert found["nsp_accuracy"][0] == 2 / 3
    assert "NotNext" in found["nsp_accuracy"][1]
    assert set(baselines.pretraining(BATCHES, nsp=False)) == {"mlm_accuracy"}
    assert baselines.pretraining([]) == {}


def test_pretraining_task_baselines_match_a_count_of_its_synthetic_eval_batches():
    from bert_jax import sharding
    from bert_jax.tasks import pretraining_data

    config = pretrain.get_config("tiny,runlocal")
    config.data.synthetic, config.model.vocab_size = True, 50
    feed = sharding.HostFeed(
        mesh=None, group=0, groups=1, shards=(0,), num_shards=1, process_count=1
    )
    data = pretraining_data.open_data(config, 8, feed)
    model = preset("tiny", vocab_size=50)
    task = PretrainingTask(model, config.data.max_seq_length, 20, nsp=True, data=data)
    found = task.baselines()
    counts = collections.Counter()
    labels = collections.Counter()
    for batch in data.evaluation()["eval"]:
        counts.update(batch["mlm_ids"][batch["mlm_weights"] > 0].tolist())
        labels.update(batch["nsp_label"].tolist())
    assert found["mlm_accuracy"][0] == counts.most_common(1)[0][1] / sum(counts.values())
    assert found["nsp_accuracy"][0] == labels.most_common(1)[0][1] / sum(labels.values())
    assert task.baselines() is found  # computed once
    no_eval = PretrainingTask(model, 128, 20, data=FakeData({}))
    assert no_eval.baselines() == {}


def classification_batch(labels, weights):
    return {"labels": np.array(labels, np.int32), "example_weights": np.array(weights, np.float32)}


def classification_task(splits, metrics):
    model = preset("tiny", vocab_size=50)
    task = SequenceClassificationTask("glue/x", model, 2, metrics, metrics[0], 32, FakeData(splits))
    task.label_names = ("no", "yes")
    return task


def test_majority_class_baselines_against_scikit_learn():
    gold = np.array([1, 1, 0, 1, 0, 1, 1])
    # The rows split over two batches; the second batch ends with two padding rows.
    batches = [
        classification_batch(gold[:4], np.ones(4)),
        classification_batch([*gold[4:], 0, 0], [1, 1, 1, 0, 0]),
    ]
    task = classification_task({"dev": batches}, ("f1", "accuracy", "matthews"))
    found = task.baselines()
    majority = np.ones_like(gold)
    assert found["accuracy"] == (accuracy_score(gold, majority), "majority class yes")
    assert found["accuracy"][0] == 5 / 7
    assert found["f1"][0] == f1_score(gold, majority)
    assert found["matthews"][0] == matthews_corrcoef(gold, majority) == 0.0


def test_several_dev_splits_are_named_split_slash_metric():
    splits = {
        "dev_matched": [classification_batch([0, 0, 1], [1, 1, 1])],
        "dev_mismatched": [classification_batch([1, 1, 0], [1, 1, 1])],
    }
    found = classification_task(splits, ("accuracy",)).baselines()
    assert found == {
        "dev_matched/accuracy": (2 / 3, "majority class no"),
        "dev_mismatched/accuracy": (2 / 3, "majority class yes"),
    }


def test_regression_has_no_baseline():
    model = preset("tiny", vocab_size=50)
    scores = FakeData({"dev": [classification_batch([1, 1, 3], [1, 1, 1])]})
    task = SequenceClassificationTask("glue/stsb", model, 1, ("pearson",), "pearson", 32, scores)
    assert task.regression and task.baselines() == {}
