"""`bert-jax evaluate --task=... --gold=PATH --predictions=PATH`: a predictions file scored
against gold data as the task's official definition says, without a model.

  squad_v1.1   gold: the official JSON; predictions: {question id: answer text}
               (predictions.json); the official evaluate-v1.1.py: exact_match, f1
  squad_v2.0   the same with evaluate-v2.0.py (empty text: no answer); `na_probs`
               (null_odds.json) adds the best thresholds
  conll2003    gold: a CoNLL file (eng.testa); predictions: the CoNLL file a run writes
               (`word gold predicted` per line; the last column is read); conlleval's entity
               precision, recall and F1
  glue/TASK    gold: the task's labelled TSV (dev.tsv); predictions: a TSV with `index` and
               `prediction` columns (predictions_dev.tsv or a submission file); the task's
               GLUE metrics

Each scorer returns a `Scored`: the metrics under the official key names, and the ids the
predictions lack or add (reported by the command; scored as the official script scores them).
"""

from __future__ import annotations

import csv
import dataclasses
import io

import numpy as np

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.tasks import glue_readers
from bert_jax.tasks import metrics as official
from bert_jax.tasks.glue_tasks import glue_task


@dataclasses.dataclass
class Scored:
    metrics: dict[str, float]
    missing: list[str] = dataclasses.field(default_factory=list)  # gold ids not predicted
    extra: list[str] = dataclasses.field(default_factory=list)  # predicted ids not in gold
    note: str = ""  # how missing ids were scored


def _read(path: str) -> str:
    try:
        data = paths.path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    try:
        # Decoded here: epath's read_text ignores `encoding`, and MRPC's files start with a BOM.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None


def read_glue_predictions(path: str) -> dict[int, str]:
    """index -> prediction from a TSV with `index` and `prediction` columns."""
    reader = csv.reader(
        io.StringIO(_read(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE
    )
    header = next(reader, None)
    if not header or "index" not in header or "prediction" not in header:
        raise UserError(
            f"{path}: expected a TSV header with `index` and `prediction` columns "
            f"(predictions_dev.tsv or a submission file), found {header}"
        )
    at_index, at_prediction = header.index("index"), header.index("prediction")
    out: dict[int, str] = {}
    for row in reader:
        if not row:
            continue
        where = f"{path} line {reader.line_num}"
        if len(row) != len(header):
            raise UserError(f"{where}: {len(row)} columns, expected {len(header)}")
        try:
            index = int(row[at_index])
        except ValueError:
            raise UserError(f"{where}: index {row[at_index]!r} is not an integer") from None
        if index in out:
            raise UserError(f"{where}: index {index} appears twice")
        out[index] = row[at_prediction]
    return out


def score_glue(task: str, gold: str, predictions: str) -> Scored:
    """A GLUE task's metrics (fractions) on the labelled `gold` TSV. Every gold row must be
    predicted and nothing else (GLUE's server takes only complete files)."""
    spec = glue_task(task.removeprefix("glue/"))
    split = spec.dev_splits[0]
    examples, skipped = glue_readers.parse_tsv(spec, split, _read(gold), source=gold)
    if skipped:
        raise UserError(f"{skipped[0]} (the gold file must be read whole)")
    predicted = read_glue_predictions(predictions)
    gold_ids = {example.index for example in examples}
    missing = sorted(gold_ids - predicted.keys())
    extra = sorted(predicted.keys() - gold_ids)
    if missing or extra:
        shown = ", ".join(
            part
            for part in (
                f"{len(missing)} gold rows unpredicted (first: {missing[:5]})" if missing else "",
                f"{len(extra)} predictions for no gold row (first: {extra[:5]})" if extra else "",
            )
            if part
        )
        raise UserError(f"{predictions} does not match {gold}: {shown}")
    labels = np.array([example.label for example in examples])
    values = [predicted[example.index] for example in examples]
    if spec.is_regression:
        try:
            guesses = np.array([float(v) for v in values])
        except ValueError as e:
            raise UserError(f"{predictions}: a prediction is not a number ({e})") from None
    else:
        label_ids = {label: i for i, label in enumerate(spec.labels)}
        unknown = sorted({v for v in values if v not in label_ids})
        if unknown:
            raise UserError(
                f"{predictions}: unknown labels {unknown[:5]} (glue/{spec.name} has "
                f"{', '.join(spec.labels)})"
            )
        guesses = np.array([label_ids[v] for v in values])
    return Scored({name: float(official.METRICS[name](guesses, labels)) for name in spec.metrics})


def score_squad(
    task: str, gold: str, predictions: str, na_probs: str | None = None, articles: str = ""
) -> Scored:
    """evaluate-v1.1.py or evaluate-v2.0.py on the official JSON (the articles `articles`
    selects, a Python slice) and a predictions.json."""
    from bert_jax.tasks import squad_data, squad_scoring

    articles = squad_data.read_squad_file(gold).select(articles).articles
    answers = squad_scoring.read_predictions(predictions)
    if task == "squad_v1.1":
        if na_probs:
            raise UserError("--na_probs is for squad_v2.0 (v1.1 questions always have answers)")
        score = squad_scoring.score_v1(articles, answers)
        note = "missing predictions score 0 (evaluate-v1.1.py)"
    else:
        probs = squad_scoring.read_na_probs(na_probs) if na_probs else None
        score = squad_scoring.score_v2(articles, answers, na_probs=probs)
        note = "missing predictions are left out of the totals (evaluate-v2.0.py)"
    return Scored(dict(score.metrics), score.missing, score.extra, note if score.missing else "")


def score_conll(gold: str, predictions: str) -> Scored:
    """conlleval's entity precision, recall and F1 (percent, as it prints them) of the last
    column of `predictions` against the tags of the CoNLL file `gold`, word by word."""
    from bert_jax.tasks import conll, ner_metrics

    gold_sentences = conll.read_file(gold)
    predicted = conll.parse_lines(_read(predictions).splitlines(), predictions)
    if len(predicted) != len(gold_sentences):
        raise UserError(
            f"{predictions} holds {len(predicted)} sentences, {gold} holds {len(gold_sentences)}"
        )
    for g, p in zip(gold_sentences, predicted, strict=True):
        if g.words != p.words:
            raise UserError(
                f"{predictions} line {p.line}: the words differ from {gold} line {g.line} "
                f"({' '.join(p.words[:5])} ... vs {' '.join(g.words[:5])} ...)"
            )
    result = ner_metrics.score([s.tags for s in gold_sentences], [s.tags for s in predicted])
    return Scored({k: 100.0 * result[k] for k in ("precision", "recall", "f1", "accuracy")})


TASKS = ("squad_v1.1", "squad_v2.0", "conll2003", "glue/TASK")


def score(
    task: str, gold: str, predictions: str, na_probs: str | None = None, articles: str = ""
) -> Scored:
    """Score `predictions` against `gold` for `task` (one of `TASKS`)."""
    if task in ("squad_v1.1", "squad_v2.0"):
        return score_squad(task, gold, predictions, na_probs, articles)
    if na_probs or articles:
        raise UserError("--na_probs and --articles are for SQuAD only")
    if task == "conll2003":
        return score_conll(gold, predictions)
    if task.startswith("glue/"):
        return score_glue(task, gold, predictions)
    raise UserError(f"unknown task {task!r} to score: one of {', '.join(TASKS)}")
