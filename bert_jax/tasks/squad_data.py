"""SQuAD v1.1 / v2.0 questions from the official JSON files or from TensorFlow Datasets.

A file is read whole and checked once (`read_squad_file`): every article, paragraph, question and
answer must have the fields the official evaluation scripts read, or a one-line `UserError` names
the file and the question. The same `SquadFile` then gives the examples (`squad_examples`) and
the gold data the scoring reads (`.articles`), so an article slice ("0:8", "-10:") selects the
same questions for both.

Training examples must have their answers where `answer_start` says (the context's text there
equals the answer's); an example with one that is not is left out and reported as `Skipped`.
Evaluation examples keep every answer as given: scoring reads only the answer texts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

from bert_jax import paths
from bert_jax.errors import UserError

TFDS_NAMES = ("squad/v1.1", "squad/v2.0")
TFDS_SPLITS = ("train", "validation")


@dataclasses.dataclass(frozen=True)
class SquadExample:
    qid: str
    title: str
    question: str
    context: str
    answers: tuple[str, ...]  # gold texts (v2.0 impossible: ())
    answer_starts: tuple[int, ...]  # character offsets into context, one per answer
    is_impossible: bool = False
    article: int = 0  # index of the article in the file (for article slicing)


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A question left out of the training examples, with the reason; `str()` is one line."""

    qid: str
    reason: str

    def __str__(self) -> str:
        return f"question {self.qid}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class SquadFile:
    """The checked contents of a SQuAD JSON file (or of a TFDS split in that layout)."""

    source: str  # the path, or "tfds squad/v1.1 validation", for messages
    version: str  # the file's `version` field as written ("1.1", "v2.0"; "" if absent)
    articles: list[dict]  # the `data` list: what the official scoring scripts read
    article_ids: tuple[int, ...]  # each article's index in the whole file

    def select(self, spec: str) -> SquadFile:
        """The articles a Python slice string selects ("" all, "0:8", "-10:", "::2", "5")."""
        chosen = article_indices(spec, len(self.articles), self.source)
        return dataclasses.replace(
            self,
            articles=[self.articles[i] for i in chosen],
            article_ids=tuple(self.article_ids[i] for i in chosen),
        )

    @property
    def num_questions(self) -> int:
        return sum(len(p["qas"]) for article in self.articles for p in article["paragraphs"])


def article_indices(spec: str, count: int, source: str = "the file") -> range:
    """Indices of the articles selected by `spec`, a Python slice or index ("" = all)."""
    spec = spec.strip()
    if not spec:
        return range(count)
    parts = spec.split(":")
    try:
        numbers = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        numbers = []
    if not 1 <= len(parts) <= 3 or not numbers:
        raise UserError(
            f"article selection {spec!r} is not a Python slice or index (e.g. '0:8', '-10:', '3')"
        )
    if len(numbers) == 1:
        if numbers[0] is None or not -count <= numbers[0] < count:
            raise UserError(f"article {spec} is out of range: {source} has {count} articles")
        index = numbers[0] % count
        return range(index, index + 1)
    if len(numbers) == 3 and numbers[2] == 0:
        raise UserError(f"article selection {spec!r} has step 0")
    chosen = range(count)[slice(*numbers)]
    if not chosen:
        raise UserError(f"article selection {spec!r} selects none of the {count} in {source}")
    return chosen


# --- the JSON file ------------------------------------------------------------------------------


def read_squad_file(path: paths.PathLike) -> SquadFile:
    """Read and check a SQuAD JSON file (v1.1 or v2.0 layout)."""
    name = os.fspath(path)
    try:
        data = paths.path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"SQuAD file {name} does not exist") from None
    except OSError as e:
        raise UserError(paths.describe_error(path, e)) from e
    try:
        top = json.loads(data)
    except UnicodeDecodeError as e:
        raise UserError(f"{name} is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UserError(
            f"{name} is not JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    if not isinstance(top, dict) or not isinstance(top.get("data"), list):
        raise UserError(f'{name} is not a SQuAD file: expected an object with a "data" list')
    version = top.get("version", "")
    articles = top["data"]
    check_articles(articles, name)
    return SquadFile(
        source=name,
        version=str(version),
        articles=articles,
        article_ids=tuple(range(len(articles))),
    )


def check_articles(articles: list, source: str) -> None:
    """UserError naming the article / question whose fields are missing or of the wrong type."""
    seen: dict[str, int] = {}
    for a, article in enumerate(articles):
        where = f"{source}: article {a}"
        paragraphs = _field(article, "paragraphs", list, where)
        _field(article, "title", str, where, required=False)
        for p, paragraph in enumerate(paragraphs):
            at = f"{where} paragraph {p}"
            _field(paragraph, "context", str, at)
            for q, qa in enumerate(_field(paragraph, "qas", list, at)):
                qid = _field(qa, "id", str, f"{at} question {q}")
                here = f"{source}: question {qid} (article {a})"
                if qid in seen:
                    raise UserError(f"{here}: the id is used again (first in article {seen[qid]})")
                seen[qid] = a
                _field(qa, "question", str, here)
                _field(qa, "is_impossible", bool, here, required=False)
                for k, answer in enumerate(_field(qa, "answers", list, here)):
                    _field(answer, "text", str, f"{here} answer {k}")
                    start = _field(answer, "answer_start", int, f"{here} answer {k}")
                    if isinstance(start, bool) or start < 0:
                        raise UserError(f"{here} answer {k}: answer_start {start} is not >= 0")


def _field(record, key: str, kind: type, where: str, required: bool = True):
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected an object, got {type(record).__name__}")
    if key not in record:
        if required:
            raise UserError(f'{where}: no "{key}" field')
        return None
    value = record[key]
    if not isinstance(value, kind):
        raise UserError(f'{where}: "{key}" should be {kind.__name__}, got {type(value).__name__}')
    return value


# --- examples -----------------------------------------------------------------------------------


def squad_examples(squad: SquadFile, training: bool) -> tuple[list[SquadExample], list[Skipped]]:
    """The file's questions as examples, in file order. `training`: answers checked against
    their offsets, questions with a misplaced answer (or, unless impossible, none) skipped."""
    examples: list[SquadExample] = []
    skipped: list[Skipped] = []
    for article_id, article in zip(squad.article_ids, squad.articles, strict=True):
        title = article.get("title", "")
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                impossible = bool(qa.get("is_impossible", False))
                # An impossible question has no answer, whatever the file lists (v2.0 keeps
                # the distractors in `plausible_answers`, which are not read).
                answers = [] if impossible else qa["answers"]
                if training:
                    reason = _training_problem(context, answers, impossible)
                    if reason:
                        skipped.append(Skipped(qa["id"], reason))
                        continue
                examples.append(
                    SquadExample(
                        qid=qa["id"],
                        title=title,
                        question=qa["question"],
                        context=context,
                        answers=tuple(a["text"] for a in answers),
                        answer_starts=tuple(a["answer_start"] for a in answers),
                        is_impossible=impossible,
                        article=article_id,
                    )
                )
    return examples, skipped


def _training_problem(context: str, answers: list[dict], impossible: bool) -> str | None:
    if not answers and not impossible:
        return "no answer, and not marked is_impossible"
    for k, answer in enumerate(answers):
        text, start = answer["text"], answer["answer_start"]
        found = context[start : start + len(text)]
        if found != text:
            return (
                f"answer {k} {_short(text)} is not at its offset {start} "
                f"(the context there reads {_short(found)})"
            )
    return None


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def read_squad(
    path: paths.PathLike, training: bool, articles: str = ""
) -> tuple[list[SquadExample], list[Skipped]]:
    """`squad_examples` of the articles `articles` selects in a SQuAD JSON file."""
    return squad_examples(read_squad_file(path).select(articles), training)


# --- TensorFlow Datasets -----------------------------------------------------------------------


def read_tfds_squad(name: str, split: str, data_dir: paths.PathLike | None = None) -> SquadFile:
    """TFDS `squad/v1.1` or `squad/v2.0` (split "train" or "validation") in the JSON layout.

    TFDS stores questions in hashed order, not the file's: articles are ordered by title,
    paragraphs by first appearance among the questions sorted by id, so article slices are
    reproducible but are not the file's.
    """
    if name not in TFDS_NAMES:
        raise UserError(f"unknown TFDS dataset {name!r} (known: {' '.join(TFDS_NAMES)})")
    if split not in TFDS_SPLITS:
        raise UserError(f"TFDS {name} has no split {split!r} (it has: {' '.join(TFDS_SPLITS)})")
    from bert_jax.data.shard_reader import tensorflow_datasets

    tfds = tensorflow_datasets()

    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False)
    except Exception as e:  # TFDS raises many types (not found, network, bad data_dir)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"cannot load TFDS {name} split {split} (data_dir {data_dir}): {first_line}"
        ) from e
    source = f"tfds {name} {split}"
    records = [_tfds_question(record) for record in tfds.as_numpy(dataset)]
    articles = articles_from_questions(records)
    check_articles(articles, source)
    return SquadFile(
        source=source,
        version=name.split("/")[1],
        articles=articles,
        article_ids=tuple(range(len(articles))),
    )


def _tfds_question(record: Mapping) -> dict:
    answers = record["answers"]
    texts = [_text(t) for t in answers["text"]]
    starts = [int(s) for s in answers["answer_start"]]
    question = {
        "title": _text(record["title"]),
        "context": _text(record["context"]),
        "id": _text(record["id"]),
        "question": _text(record["question"]),
        "answers": [{"text": t, "answer_start": s} for t, s in zip(texts, starts, strict=True)],
    }
    if "is_impossible" in record:
        question["is_impossible"] = bool(record["is_impossible"])
    return question


def articles_from_questions(questions: list[dict]) -> list[dict]:
    """Flat questions (title, context, id, question, answers) grouped into the JSON layout."""
    by_title: dict[str, dict[str, list[dict]]] = {}
    for q in sorted(questions, key=lambda q: q["id"]):
        qa = {k: v for k, v in q.items() if k not in ("title", "context")}
        by_title.setdefault(q["title"], {}).setdefault(q["context"], []).append(qa)
    return [
        {
            "title": title,
            "paragraphs": [{"context": c, "qas": qas} for c, qas in by_title[title].items()],
        }
        for title in sorted(by_title)
    ]


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
