"""The files a fine-tuned GLUE run leaves behind (`bert_jax/tasks/finetune_outputs.py`).

One tiny MRPC fine-tune (a 1-layer, 32-wide model from scratch, 4 steps on a hand-written
MRPC-layout folder) runs once per test session through the real `bert-jax finetune`; its
eval_results.json is checked against the metrics stored with the checkpoints and against
scikit-learn on the predictions file, and its submission against the test file it came from.
The file formats (STS-B clipping, MNLI's splits and AX) are checked on hand-made predictions.
The evaluate and predict CLI tests use copies of the same run (`finetuned_copy`).
"""

from __future__ import annotations

import json
import pathlib
import types

import numpy as np
import pytest

from bert_jax import main as cli
from bert_jax.errors import UserError
from bert_jax.tasks import finetune_outputs
from bert_jax.tasks.classification import Predictions
from bert_jax.tasks.glue_tasks import GLUE_TASKS
from tests.tasks.finetuned_run import (
    EVAL_EVERY,
    STEPS,
    TEST_IDS,
    data_dir,
    finetuned_copy,
    read_tsv,
    stored_metrics,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> pathlib.Path:
    return finetuned_copy(tmp_path_factory, "outputs")


def test_eval_results_come_from_the_best_checkpoint(run):
    results = json.loads((run / "eval_results.json").read_text())
    scored = stored_metrics(run)
    assert sorted(scored) == [EVAL_EVERY, STEPS]
    # Best by F1 (MRPC's main metric), the earliest step among equals.
    best = max(sorted(scored), key=lambda step: scored[step]["f1"])
    assert best != STEPS, "this run's best step should precede its last, to tell them apart"
    assert results["task"] == "glue/mrpc"
    assert results["step"] == best
    # 32 training examples in batches of 8: 4 steps per epoch.
    assert results["epoch"] == pytest.approx(best / 4)
    assert results["init_from"] is None  # trained from scratch
    assert results["checkpoint"].endswith(f"checkpoints/{best}")
    assert list(results["splits"]) == ["dev"]
    dev = results["splits"]["dev"]
    assert dev["examples"] == 20
    for name in ("f1", "accuracy", "loss"):
        assert dev[name] == pytest.approx(scored[best][name], abs=1e-6)


def test_dev_predictions_agree_with_the_metrics(run):
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference")
    rows = read_tsv(run / "predictions_dev.tsv")
    dev = read_tsv(data_dir(run) / "MRPC" / "dev.tsv")
    assert list(rows[0]) == ["index", "label", "prediction", "probability_0", "probability_1"]
    assert [r["index"] for r in rows] == [str(i) for i in range(len(dev))]
    assert [r["label"] for r in rows] == [r["Quality"] for r in dev]
    probabilities = np.array([[float(r["probability_0"]), float(r["probability_1"])] for r in rows])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=2e-6)
    assert [r["prediction"] for r in rows] == [str(i) for i in probabilities.argmax(axis=1)]

    gold = [int(r["label"]) for r in rows]
    predicted = [int(r["prediction"]) for r in rows]
    dev_results = json.loads((run / "eval_results.json").read_text())["splits"]["dev"]
    assert dev_results["f1"] == pytest.approx(sklearn_metrics.f1_score(gold, predicted))
    assert dev_results["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(gold, predicted))
    loss = sklearn_metrics.log_loss(gold, probabilities, labels=[0, 1])
    assert dev_results["loss"] == pytest.approx(loss, abs=1e-4)


def test_submission_follows_the_test_file(run):
    lines = (run / "submission" / "MRPC.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction"
    rows = [line.split("\t") for line in lines[1:]]
    assert [int(index) for index, _ in rows] == TEST_IDS
    assert {label for _, label in rows} <= {"0", "1"}


# --- formats and split choice, on hand-made predictions ---------------------------------------


def _predictions(logits, labels) -> Predictions:
    logits = np.asarray(logits, np.float32)
    return Predictions(np.arange(len(logits)), logits, np.asarray(labels))


def test_stsb_submission_clips_scores_to_glue_scale():
    stsb = GLUE_TASKS["stsb"]
    predictions = _predictions([[-0.4], [2.5], [5.7], [4.9996]], [np.nan] * 4)
    text = finetune_outputs.submission_tsv(stsb, np.array([10, 11, 12, 13]), predictions)
    assert text == "index\tprediction\n10\t0.000\n11\t2.500\n12\t5.000\n13\t5.000\n"


def test_stsb_predictions_keep_the_raw_score():
    stsb = GLUE_TASKS["stsb"]
    predictions = _predictions([[-0.25], [5.5]], np.array([0.4, 5.0], np.float32))
    text = finetune_outputs.predictions_tsv(stsb, np.array([0, 1]), predictions)
    assert text == "index\tlabel\tprediction\n0\t0.400\t-0.250000\n1\t5.000\t5.500000\n"


def test_mnli_submission_uses_label_strings():
    mnli = GLUE_TASKS["mnli"]  # BERT's order: contradiction, entailment, neutral
    predictions = _predictions([[0, 3, 1], [5, 0, 0], [0, 0, 2]], [-1, -1, -1])
    text = finetune_outputs.submission_tsv(mnli, np.array([2, 0, 1]), predictions)
    assert text == "index\tprediction\n2\tentailment\n0\tcontradiction\n1\tneutral\n"


def test_mnli_splits_and_the_diagnostic_set():
    mnli, ax = GLUE_TASKS["mnli"], GLUE_TASKS["ax"]
    dev = finetune_outputs.targets(mnli, "dev")
    assert [(t.spec, t.split, t.labelled) for t in dev] == [
        (mnli, "dev_matched", True),
        (mnli, "dev_mismatched", True),
    ]
    test = finetune_outputs.targets(mnli, "test")
    assert [(t.spec.name, t.split, t.required) for t in test] == [
        ("mnli", "test_matched", False),
        ("mnli", "test_mismatched", False),
        ("ax", "test", False),
    ]
    assert [(t.spec, t.split) for t in finetune_outputs.targets(mnli, "ax")] == [(ax, "test")]
    assert finetune_outputs.targets(GLUE_TASKS["mrpc"], "test")[-1].spec.name == "mrpc"
    with pytest.raises(UserError, match=r"unknown split 'dev_m' for glue/mnli .*dev_matched"):
        finetune_outputs.targets(mnli, "dev_m")


def test_a_missing_test_file_is_skipped_with_its_name(tmp_path):
    (tmp_path / "MNLI").mkdir()
    run = types.SimpleNamespace(
        config=types.SimpleNamespace(data=types.SimpleNamespace(data_dir=str(tmp_path), tfds=False))
    )
    target = finetune_outputs.targets(GLUE_TASKS["mnli"], "test")[1]
    result = finetune_outputs.predict_target(run, target)
    assert result.written is None and result.examples == 0
    assert "MNLI/test_mismatched.tsv" in result.skipped
    assert result.describe().startswith("test_mismatched: skipped (")


def test_epoch_is_null_without_the_training_file(run, tmp_path):
    """A run whose data moved still gets its results, without an epoch."""
    missing = tmp_path / "elsewhere"
    missing.mkdir()
    from bert_jax.tasks import finetune_run

    opened = finetune_run.open_run(run, data_dir=str(missing))
    assert finetune_outputs.steps_per_epoch(opened) is None


def test_a_fine_tuned_run_exports_to_transformers_with_its_labels(tmp_path_factory, tmp_path):
    """`bert-jax checkpoints --export` of a GLUE run: a BertForSequenceClassification with the
    run's label names whose logits are the run's own dev predictions."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    workdir = finetuned_copy(tmp_path_factory, "export")
    best = json.loads((workdir / "eval_results.json").read_text())["step"]
    out = tmp_path / "hf"
    assert cli.main(["checkpoints", str(workdir), f"--export={best}", f"--to={out}"]) == 0
    model = transformers.BertForSequenceClassification.from_pretrained(out).eval()
    assert model.config.id2label == {0: "0", 1: "1"}
    tokenizer = transformers.BertTokenizer.from_pretrained(out)
    rows = read_tsv(workdir / "predictions_dev.tsv")
    dev = read_tsv(data_dir(workdir) / "MRPC" / "dev.tsv")
    for row in rows[:5]:
        example = dev[int(row["index"])]
        encoded = tokenizer(example["#1 String"], example["#2 String"], return_tensors="pt")
        with torch.no_grad():
            probabilities = model(**encoded).logits.softmax(-1)[0].numpy()
        expected = [float(row["probability_0"]), float(row["probability_1"])]
        np.testing.assert_allclose(probabilities, expected, atol=1e-4)
