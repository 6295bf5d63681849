"""The official SQuAD evaluation scripts (evaluate-v1.1.py, evaluate-v2.0.py) as functions.

Same normalisation, exact match and token F1, the same sums in the same order (so the same
floats), the same key names and 0-100 percentages. Where the scripts print, `Score.notes` holds
their lines, and the question ids without a prediction (`missing`) and the predictions for no
question (`extra`, ignored by both scripts) are listed for the caller.

How the two versions treat a question without a prediction differs, as in the scripts: v1.1
scores it 0 and counts it; v2.0 leaves it out of every total. (The v2.0 script then stops with a
KeyError when it computes HasAns_*/NoAns_*; here those totals, too, are over the questions with
a prediction.)
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import re
import string
from collections.abc import Iterator, Mapping

from bert_jax import paths
from bert_jax.errors import UserError

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


@dataclasses.dataclass(frozen=True)
class Score:
    metrics: dict[str, float | int]  # the official keys, in the scripts' order
    missing: list[str]  # gold question ids without a prediction, in file order
    extra: list[str]  # prediction ids that are no question of the gold file
    notes: list[str]  # the lines the official script prints about missing predictions


def normalize_answer(s: str) -> str:
    """Lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _questions(articles: list[dict]) -> Iterator[dict]:
    for article in articles:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def _missing_and_extra(articles: list[dict], ids) -> tuple[list[str], list[str]]:
    gold = [qa["id"] for qa in _questions(articles)]
    known = set(gold)
    return [q for q in gold if q not in ids], [q for q in ids if q not in known]


# --- v1.1 ---------------------------------------------------------------------------------------


def exact_match_v1(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_v1(prediction: str, ground_truth: str) -> float:
    """Token F1; 0 when nothing is shared (also for two empty answers, unlike v2.0)."""
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def score_v1(articles: list[dict], predictions: Mapping[str, str]) -> Score:
    """evaluate-v1.1.py: best EM and F1 over the gold answers, averaged over every question
    (a question without a prediction scores 0)."""
    f1 = exact_match = total = 0
    notes = []
    for qa in _questions(articles):
        total += 1
        if qa["id"] not in predictions:
            notes.append(f"Unanswered question {qa['id']} will receive score 0.")
            continue
        ground_truths = [answer["text"] for answer in qa["answers"]]
        if not ground_truths:
            raise UserError(
                f"question {qa['id']} has no gold answer: v1.1 scoring needs one "
                "(unanswerable questions are SQuAD v2.0)"
            )
        prediction = predictions[qa["id"]]
        exact_match += max(exact_match_v1(prediction, gold) for gold in ground_truths)
        f1 += max(f1_v1(prediction, gold) for gold in ground_truths)
    if total == 0:
        raise UserError("the gold data has no questions to score")
    missing, extra = _missing_and_extra(articles, predictions)
    metrics = {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}
    return Score(metrics=metrics, missing=missing, extra=extra, notes=notes)


# --- v2.0 ---------------------------------------------------------------------------------------


def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def compute_exact(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    """Token F1; when either side is no-answer (no tokens), 1 if both are, else 0."""
    gold_toks = _tokens(a_gold)
    pred_toks = _tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def get_raw_scores(
    articles: list[dict], predictions: Mapping[str, str]
) -> tuple[dict[str, int], dict[str, float], list[str]]:
    """Per question id with a prediction: best exact and F1 over the gold answers (no gold
    answer that normalises to something: the only right answer is ""); and the notes."""
    exact_scores: dict[str, int] = {}
    f1_scores: dict[str, float] = {}
    notes = []
    for qa in _questions(articles):
        qid = qa["id"]
        gold_answers = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])]
        if not gold_answers:
            gold_answers = [""]
        if qid not in predictions:
            notes.append(f"Missing prediction for {qid}")
            continue
        a_pred = predictions[qid]
        exact_scores[qid] = max(compute_exact(a, a_pred) for a in gold_answers)
        f1_scores[qid] = max(compute_f1(a, a_pred) for a in gold_answers)
    return exact_scores, f1_scores, notes


def apply_no_ans_threshold(scores, na_probs, qid_to_has_ans, na_prob_thresh: float) -> dict:
    """Above the threshold the prediction counts as "no answer": right iff there is none."""
    new_scores = {}
    for qid, s in scores.items():
        if na_probs[qid] > na_prob_thresh:
            new_scores[qid] = float(not qid_to_has_ans[qid])
        else:
            new_scores[qid] = s
    return new_scores


def make_eval_dict(exact_scores, f1_scores, qid_list=None) -> dict:
    qids = list(exact_scores) if qid_list is None else qid_list
    total = len(qids)
    return {
        "exact": 100.0 * sum(exact_scores[k] for k in qids) / total,
        "f1": 100.0 * sum(f1_scores[k] for k in qids) / total,
        "total": total,
    }


def find_best_thresh(predictions, scores, na_probs, qid_to_has_ans) -> tuple[float, float]:
    """The na_prob threshold that maximises the score: questions in increasing na_prob order
    switch from "no answer" to their prediction one by one (ties in na_probs' order)."""
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur_score = num_no_ans
    best_score = cur_score
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        # A question with an answer gains its score; one without loses 1 if we answer it.
        cur_score += scores[qid] if qid_to_has_ans[qid] else (-1 if predictions[qid] else 0)
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def score_v2(
    articles: list[dict],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    threshold: float = 1.0,
) -> Score:
    """evaluate-v2.0.py. With `na_probs` (question id -> probability of no answer, the script's
    --na-prob-file), predictions whose na_prob exceeds `threshold` count as "no answer", and
    best_exact/best_f1 with their thresholds are searched."""
    qid_to_has_ans = {qa["id"]: bool(qa["answers"]) for qa in _questions(articles)}
    exact_raw, f1_raw, notes = get_raw_scores(articles, predictions)
    if not exact_raw:
        raise UserError(
            f"none of the {len(qid_to_has_ans)} questions of the gold data has a prediction"
        )
    given_na_probs = na_probs is not None
    if na_probs is None:
        na_probs = {k: 0.0 for k in predictions}
    lacking = [qid for qid in exact_raw if qid not in na_probs]
    if lacking:
        raise UserError(
            f"the no-answer probabilities lack {len(lacking)} question ids that have a "
            f"prediction (first: {', '.join(lacking[:3])})"
        )
    exact_thresh = apply_no_ans_threshold(exact_raw, na_probs, qid_to_has_ans, threshold)
    f1_thresh = apply_no_ans_threshold(f1_raw, na_probs, qid_to_has_ans, threshold)
    metrics = make_eval_dict(exact_thresh, f1_thresh)
    for prefix, has_ans in (("HasAns", True), ("NoAns", False)):
        if not any(v == has_ans for v in qid_to_has_ans.values()):
            continue  # the script adds these keys only when the data has such questions
        qids = [k for k, v in qid_to_has_ans.items() if v == has_ans and k in exact_thresh]
        if qids:
            for key, value in make_eval_dict(exact_thresh, f1_thresh, qids).items():
                metrics[f"{prefix}_{key}"] = value
    if given_na_probs:
        best_exact, exact_at = find_best_thresh(predictions, exact_raw, na_probs, qid_to_has_ans)
        best_f1, f1_at = find_best_thresh(predictions, f1_raw, na_probs, qid_to_has_ans)
        metrics |= {
            "best_exact": best_exact,
            "best_exact_thresh": exact_at,
            "best_f1": best_f1,
            "best_f1_thresh": f1_at,
        }
    missing, extra = _missing_and_extra(articles, predictions)
    return Score(metrics=metrics, missing=missing, extra=extra, notes=notes)


# --- files --------------------------------------------------------------------------------------


def read_predictions(path: paths.PathLike) -> dict[str, str]:
    """A predictions.json: one JSON object, question id -> answer text."""
    table = _read_json_object(path, "predictions")
    for qid, value in table.items():
        if not isinstance(value, str):
            raise UserError(
                f"predictions file {os.fspath(path)}: the answer for {qid} is "
                f"{type(value).__name__}, expected a string"
            )
    return table


def read_na_probs(path: paths.PathLike) -> dict[str, float]:
    """A null_odds.json / na_prob.json: one JSON object, question id -> number (kept as read,
    so a threshold found prints as the script prints it)."""
    table = _read_json_object(path, "no-answer probabilities")
    for qid, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise UserError(
                f"no-answer probabilities file {os.fspath(path)}: the value for {qid} is "
                f"{value!r}, expected a number"
            )
    return table


def _read_json_object(path: paths.PathLike, what: str) -> dict:
    name = os.fspath(path)
    try:
        data = paths.path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} file {name} does not exist") from None
    except OSError as e:
        raise UserError(paths.describe_error(path, e)) from e
    try:
        table = json.loads(data)
    except UnicodeDecodeError as e:
        raise UserError(f"{what} file {name} is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UserError(
            f"{what} file {name} is not JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    if not isinstance(table, dict):
        raise UserError(
            f"{what} file {name} holds a JSON {type(table).__name__}, expected an object "
            "of question id -> value"
        )
    return table
