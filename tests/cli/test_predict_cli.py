"""`bert-jax predict` on a copy of the session's tiny MRPC fine-tune
(`tests/tasks/finetuned_run.py`): lines read in chunks come back in order with the
predictions the evaluation step made for the same examples (its dev predictions file and its
submission); lines of the wrong shape stop with one line naming them (exit 2)."""

from __future__ import annotations

import csv
import io
import json
import pathlib
import sys

import numpy as np
import pytest

from bert_jax import main as cli
from bert_jax.cli import predict
from bert_jax.errors import UserError
from bert_jax.tasks.classification import Predictions
from bert_jax.tasks.glue_tasks import GLUE_TASKS
from tests.tasks.finetuned_run import data_dir, finetuned_copy, read_tsv


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> pathlib.Path:
    return finetuned_copy(tmp_path_factory, "predict")


def _predict(monkeypatch, capsys, lines: list[str], *args: str) -> tuple[int, str, str]:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    code = cli.main(["predict", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _pairs(path: pathlib.Path, a: str, b: str) -> list[str]:
    return [f"{row[a]}\t{row[b]}" for row in read_tsv(path)]


def test_predictions_equal_the_evaluation_outputs(run, monkeypatch, capsys):
    dev_lines = _pairs(data_dir(run) / "MRPC" / "dev.tsv", "#1 String", "#2 String")[:7]
    test_lines = _pairs(data_dir(run) / "MRPC" / "test.tsv", "#1 String", "#2 String")
    # Chunks of 4 lines: batches cut across dev and test rows, sorted by length inside.
    code, out, _ = _predict(
        monkeypatch, capsys, dev_lines + test_lines, f"--workdir={run}", "--chunk=4"
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == len(dev_lines) + len(test_lines)
    assert all(set(row["probabilities"]) == {"0", "1"} for row in rows)

    # The best step's dev predictions, as the finetune run wrote them.
    written = read_tsv(run / "predictions_dev.tsv")[: len(dev_lines)]
    expected = np.array([[float(r["probability_0"]), float(r["probability_1"])] for r in written])
    got = np.array([[r["probabilities"]["0"], r["probabilities"]["1"]] for r in rows[:7]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [r["label"] for r in rows[:7]] == [r["prediction"] for r in written]

    with open(run / "submission" / "MRPC.tsv", newline="") as f:
        submitted = [r["prediction"] for r in csv.DictReader(f, delimiter="\t")]
    assert [r["label"] for r in rows[7:]] == submitted


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["a\tb", "c\td", "e\tf\tg"], "stdin line 3: MRPC takes a sentence pair"),
        (["a\tb", "just one sentence"], "stdin line 2: MRPC takes a sentence pair"),
    ],
)
def test_bad_lines_stop_with_their_number(run, monkeypatch, capsys, lines, message):
    code, out, err = _predict(monkeypatch, capsys, lines, f"--workdir={run}")
    assert code == 2 and out == ""
    errors = [line for line in err.splitlines() if line.startswith("bert-jax predict: error:")]
    assert len(errors) == 1 and message in errors[0]


def test_a_workdir_without_checkpoints(tmp_path, monkeypatch, capsys):
    code, out, err = _predict(monkeypatch, capsys, ["a\tb"], f"--workdir={tmp_path}")
    assert code == 2 and out == ""
    assert err.strip() == f"bert-jax predict: error: no bert-jax checkpoint in {tmp_path}"


def test_single_sentence_tasks_refuse_a_pair():
    assert predict.parse_line(b"a good film\n", 1, pairs=False, task="SST-2") == (
        "a good film",
        None,
    )
    with pytest.raises(UserError, match=r"^stdin line 4: SST-2 takes one sentence a line"):
        predict.parse_line(b"a good film\tand more\n", 4, pairs=False, task="SST-2")
    with pytest.raises(UserError, match=r"^stdin line 2: not UTF-8 text"):
        predict.parse_line(b"caf\xe9\n", 2, pairs=False, task="SST-2")


def test_output_objects_name_glue_labels():
    logits = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    mnli = predict.rows(GLUE_TASKS["mnli"], Predictions(np.arange(2), logits, np.full(2, -1)))
    assert [row["label"] for row in mnli] == ["entailment", "contradiction"]
    e = np.exp(2.0)
    assert mnli[0]["probabilities"] == pytest.approx(
        {"contradiction": 1 / (e + 2), "entailment": e / (e + 2), "neutral": 1 / (e + 2)}
    )
    scores = np.array([[3.25], [-0.5]], np.float32)
    stsb = predict.rows(GLUE_TASKS["stsb"], Predictions(np.arange(2), scores, np.full(2, np.nan)))
    assert stsb == [{"score": 3.25}, {"score": -0.5}]
