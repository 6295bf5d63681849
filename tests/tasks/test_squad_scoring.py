"""SQuAD scoring as the official scripts define it: hand-worked cases (normalisation, several gold
answers, v2.0 no-answer questions and thresholds, missing and extra ids), the gold answers of the
real dev set scoring 100, and the v2.0 metrics equal to transformers' copy of evaluate-v2.0.py on
perturbed predictions."""

from __future__ import annotations

import importlib.util
import json
import random
import time
import types

import pytest

from bert_jax.errors import UserError
from bert_jax.tasks.squad_data import read_squad_file
from bert_jax.tasks.squad_scoring import (
    compute_exact,
    compute_f1,
    exact_match_v1,
    f1_v1,
    normalize_answer,
    read_na_probs,
    read_predictions,
    score_v1,
    score_v2,
)
from tests.conftest import shared_path


def articles(*questions: tuple[str, list[str]]) -> list[dict]:
    """One article, one paragraph, the questions (id, gold answer texts)."""
    qas = [
        {"id": qid, "question": "?", "answers": [{"text": t, "answer_start": 0} for t in golds]}
        for qid, golds in questions
    ]
    return [{"title": "T", "paragraphs": [{"context": "c", "qas": qas}]}]


def test_normalize_answer():
    assert normalize_answer("The Cat") == "cat"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("Theatre, anthem, bathe") == "theatre anthem bathe"  # whole words
    assert normalize_answer("  Santa\tClara,\n California. ") == "santa clara california"
    assert normalize_answer("U.S.A.") == "usa"
    assert normalize_answer("the-the") == "thethe"  # punctuation goes before articles
    assert normalize_answer("A") == normalize_answer("...") == ""
    assert normalize_answer("Café “quoted”") == "café “quoted”"  # only ASCII punctuation


def test_v1_pair_scores():
    assert exact_match_v1("the Denver Broncos", "Denver Broncos!")
    assert f1_v1("Broncos", "Denver Broncos") == pytest.approx(2 / 3)
    assert f1_v1("big red dog dog", "dog big") == pytest.approx(2 * 0.5 * 1 / 1.5)
    # v1.1 gives 0 F1 to two empty answers; v2.0 gives 1.
    assert (exact_match_v1("", "the"), f1_v1("", "the"), compute_f1("the", "")) == (True, 0, 1)
    assert compute_f1("Paris", "") == 0 and compute_exact("", "a") == 1


def test_v1_hand_worked():
    gold = articles(
        ("q1", ["Denver Broncos", "the Denver Broncos"]),
        ("q2", ["1990"]),
        ("q3", ["Santa Clara, California", "Levi's Stadium"]),
    )
    score = score_v1(gold, {"q1": "Broncos", "q3": "santa clara  california.", "zzz": "x"})
    assert score.metrics == {
        "exact_match": pytest.approx(100 / 3),
        "f1": pytest.approx(100 * (2 / 3 + 0 + 1) / 3),
    }
    assert list(score.metrics) == ["exact_match", "f1"]
    assert (score.missing, score.extra) == (["q2"], ["zzz"])
    assert score.notes == ["Unanswered question q2 will receive score 0."]
    with pytest.raises(UserError, match="question q1 has no gold answer"):
        score_v1(articles(("q1", [])), {"q1": ""})


V2_GOLD = articles(
    ("q1", ["Paris"]),
    ("q2", []),  # no answer
    ("q3", []),
    ("q4", ["the big red dog", "big red dog"]),
    ("q5", ["x"]),  # no prediction: left out of every total
)
V2_PREDICTIONS = {"q1": "paris", "q2": "", "q3": "London", "q4": "big dog", "zzz": "extra"}
V2_NA_PROBS = {"q1": 0.1, "q2": 0.9, "q3": 0.8, "q4": 0.3, "zzz": 0.5}


def test_v2_hand_worked_without_no_answer_probabilities():
    score = score_v2(V2_GOLD, V2_PREDICTIONS)
    # exact q1..q4: 1 1 0 0; F1: 1 1 0 0.8 (P 1, R 2/3)
    assert score.metrics == pytest.approx(
        {
            "exact": 50.0,
            "f1": 70.0,
            "total": 4,
            "HasAns_exact": 50.0,
            "HasAns_f1": 90.0,
            "HasAns_total": 2,
            "NoAns_exact": 50.0,
            "NoAns_f1": 50.0,
            "NoAns_total": 2,
        }
    )
    assert list(score.metrics)[:3] == ["exact", "f1", "total"]
    assert (score.missing, score.extra) == (["q5"], ["zzz"])
    assert score.notes == ["Missing prediction for q5"]


def test_v2_hand_worked_thresholds():
    score = score_v2(V2_GOLD, V2_PREDICTIONS, V2_NA_PROBS, threshold=0.5)
    # q2 and q3 (na_prob > 0.5) count as "no answer": right for both.
    assert score.metrics == pytest.approx(
        {
            "exact": 75.0,
            "f1": 95.0,
            "total": 4,
            "HasAns_exact": 50.0,
            "HasAns_f1": 90.0,
            "HasAns_total": 2,
            "NoAns_exact": 100.0,
            "NoAns_f1": 100.0,
            "NoAns_total": 2,
            # From 2 (both no-answer questions right), in na_prob order: q1 +1 (at 0.1),
            # q4 +0 / +0.8 (at 0.3), q3 -1 (answered wrongly), q2 +0.
            "best_exact": 75.0,
            "best_exact_thresh": 0.1,
            "best_f1": 95.0,
            "best_f1_thresh": 0.3,
        }
    )
    assert list(score.metrics)[-4:] == [
        "best_exact",
        "best_exact_thresh",
        "best_f1",
        "best_f1_thresh",
    ]
    # The default threshold 1.0 keeps every prediction.
    assert score_v2(V2_GOLD, V2_PREDICTIONS, V2_NA_PROBS).metrics["exact"] == 50.0
    with pytest.raises(UserError, match=r"lack 1 question ids .* \(first: q4\)"):
        score_v2(V2_GOLD, V2_PREDICTIONS, {k: v for k, v in V2_NA_PROBS.items() if k != "q4"})
    with pytest.raises(UserError, match="none of the 5 questions"):
        score_v2(V2_GOLD, {"zzz": ""})


def test_v2_gold_answers_that_normalise_to_nothing_mean_no_answer():
    gold = articles(("q1", ["the", "."]), ("q2", ["a cat", "the"]))
    score = score_v2(gold, {"q1": "", "q2": ""})
    assert (score.metrics["exact"], score.metrics["f1"]) == (50.0, 50.0)
    assert score.metrics["HasAns_total"] == 2 and "NoAns_total" not in score.metrics


def dev_gold():
    return read_squad_file(shared_path("squad", "dev-v1.1.json")).articles


def test_dev_gold_answers_score_100():
    gold = dev_gold()
    questions = [qa for a in gold for p in a["paragraphs"] for qa in p["qas"]]
    rng = random.Random(0)
    predictions = {qa["id"]: rng.choice(qa["answers"])["text"] for qa in questions}
    start = time.perf_counter()
    v1 = score_v1(gold, predictions)
    v2 = score_v2(gold, predictions)
    seconds = time.perf_counter() - start
    assert v1.metrics == {"exact_match": 100.0, "f1": 100.0}
    assert v2.metrics == {
        "exact": 100.0,
        "f1": 100.0,
        "total": 10570,
        "HasAns_exact": 100.0,
        "HasAns_f1": 100.0,
        "HasAns_total": 10570,
    }
    assert v1.missing == v1.extra == v2.missing == v2.extra == []
    print(f"scored v1.1 and v2.0 on the dev set in {seconds:.2f} s")
    assert seconds < 10


def transformers_squad_metrics():
    """transformers' copy of evaluate-v2.0.py, loaded from its file (importing it through its
    package would import TensorFlow and take 10 s more)."""
    transformers = pytest.importorskip("transformers", reason="transformers is the reference")
    path = f"{transformers.__path__[0]}/data/metrics/squad_metrics.py"
    spec = importlib.util.spec_from_file_location("transformers.data.metrics.squad_metrics", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_v2_equals_transformers_on_perturbed_dev_predictions():
    reference = transformers_squad_metrics()
    gold = dev_gold()
    questions = [qa for a in gold for p in a["paragraphs"] for qa in p["qas"]]
    # Some questions made unanswerable, predictions cut, emptied or swapped for other answers.
    rng = random.Random(1)
    for qa in questions[::7]:
        qa["answers"] = []
    predictions, na_probs = {}, {}
    for qa in questions:
        text = rng.choice(qa["answers"])["text"] if qa["answers"] else "an answer"
        words = text.split()
        choice = rng.random()
        if choice < 0.2:
            text = " ".join(words[: rng.randint(0, len(words))])
        elif choice < 0.3:
            text = ""
        elif choice < 0.5:
            text = rng.choice(questions)["question"]
        predictions[qa["id"]] = text
        na_probs[qa["id"]] = round(rng.random(), 2)  # ties, as real null odds seldom have
    examples = [types.SimpleNamespace(qas_id=qa["id"], answers=qa["answers"]) for qa in questions]
    for threshold in (1.0, 0.5):
        expected = reference.squad_evaluate(examples, predictions, na_probs, threshold)
        got = score_v2(gold, predictions, na_probs, threshold).metrics
        assert got == dict(expected)  # the same floats, not just close
        assert list(got) == list(expected)
    assert 0 < got["NoAns_total"] < got["HasAns_total"]


def test_reading_prediction_files(tmp_path):
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps({"q1": "Paris", "q2": ""}), encoding="utf-8")
    assert read_predictions(path) == {"q1": "Paris", "q2": ""}
    with pytest.raises(UserError, match=r"predictions file .*missing.json does not exist"):
        read_predictions(tmp_path / "missing.json")
    path.write_text('{"q1": "Paris",\n "q2": }', encoding="utf-8")
    with pytest.raises(UserError, match=r"is not JSON: Expecting value at line 2 column 8"):
        read_predictions(path)
    path.write_text('["Paris"]', encoding="utf-8")
    with pytest.raises(UserError, match=r"holds a JSON list, expected an object of question id"):
        read_predictions(path)
    path.write_text('{"q1": ["Paris"]}', encoding="utf-8")
    with pytest.raises(UserError, match=r"the answer for q1 is list, expected a string"):
        read_predictions(path)
    path.write_text('{"q1": 0.25, "q2": -3}', encoding="utf-8")
    assert read_na_probs(path) == {"q1": 0.25, "q2": -3.0}
    path.write_text('{"q1": "0.25"}', encoding="utf-8")
    with pytest.raises(UserError, match=r"the value for q1 is '0.25', expected a number"):
        read_na_probs(path)
