"""SQuAD readers: counts on the real dev file, article slices, training examples with misplaced
answers skipped and reported, the v2.0 layout, every error message, and TFDS records through a
stand-in module."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from bert_jax.errors import UserError
from bert_jax.tasks.squad_data import (
    SquadExample,
    article_indices,
    read_squad,
    read_squad_file,
    read_tfds_squad,
    squad_examples,
)
from tests.conftest import shared_path

CONTEXT = "Paris is the capital of France. Its mayor is Anne Hidalgo."


def qa(qid: str, answers: list[tuple[str, int]], **extra) -> dict:
    question = {"id": qid, "question": f"question {qid}?"}
    question["answers"] = [{"text": t, "answer_start": s} for t, s in answers]
    return question | extra


def write(tmp_path, articles: list[dict], version: str = "1.1", name: str = "squad.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"version": version, "data": articles}), encoding="utf-8")
    return path


def test_dev_file_counts_and_article_slices():
    path = shared_path("squad", "dev-v1.1.json")
    squad = read_squad_file(path)
    assert (squad.version, len(squad.articles), squad.num_questions) == ("1.1", 48, 10570)
    last = squad.select("-10:")
    assert (len(last.articles), last.num_questions, last.article_ids) == (
        10,
        1988,
        (*range(38, 48),),
    )
    examples, skipped = squad_examples(last, training=False)
    assert len(examples) == 1988 and skipped == []
    assert {e.article for e in examples} == set(range(38, 48))
    first, skipped = read_squad(path, training=True, articles="0:8")
    assert skipped == [] and {e.article for e in first} == set(range(8))
    assert not {e.qid for e in first} & {e.qid for e in examples}
    e = first[0]  # the first question of the file
    assert (e.qid, e.title, e.answers[0], e.is_impossible) == (
        "56be4db0acb8001400a502ec",
        "Super_Bowl_50",
        "Denver Broncos",
        False,
    )
    assert e.context[e.answer_starts[0] :].startswith("Denver Broncos")
    assert squad.select("5").article_ids == (5,) and squad.select("").num_questions == 10570


def test_article_indices():
    assert article_indices("", 5) == range(5)
    assert list(article_indices("0:2", 5)) == [0, 1]
    assert list(article_indices("-2:", 5)) == [3, 4]
    assert list(article_indices("::2", 5)) == [0, 2, 4]
    assert list(article_indices(" -1 ", 5)) == [4]
    with pytest.raises(UserError, match=r"'a:b' is not a Python slice or index"):
        article_indices("a:b", 5)
    with pytest.raises(UserError, match=r"'1:2:3:4' is not a Python slice"):
        article_indices("1:2:3:4", 5)
    with pytest.raises(UserError, match="article 5 is out of range: f.json has 5 articles"):
        article_indices("5", 5, "f.json")
    with pytest.raises(UserError, match="has step 0"):
        article_indices("::0", 5)
    with pytest.raises(UserError, match="'7:' selects none of the 5 in f.json"):
        article_indices("7:", 5, "f.json")


def test_training_skips_answers_not_at_their_offset(tmp_path):
    questions = [
        qa("good", [("Paris", 0)]),
        qa("off_by_one", [("capital", 12)]),  # "capital" starts at 13
        qa("second_answer_wrong", [("France", 24), ("Hidalgo", 3)]),
        qa("no_answer", []),
    ]
    path = write(
        tmp_path, [{"title": "Paris", "paragraphs": [{"context": CONTEXT, "qas": questions}]}]
    )
    examples, skipped = read_squad(path, training=True)
    assert [e.qid for e in examples] == ["good"]
    assert [(s.qid, s.reason) for s in skipped] == [
        (
            "off_by_one",
            "answer 0 'capital' is not at its offset 12 (the context there reads ' capita')",
        ),
        (
            "second_answer_wrong",
            "answer 1 'Hidalgo' is not at its offset 3 (the context there reads 'is is t')",
        ),
        ("no_answer", "no answer, and not marked is_impossible"),
    ]
    assert str(skipped[0]).startswith("question off_by_one: answer 0")
    # Evaluation keeps every question and every answer as given.
    examples, skipped = read_squad(path, training=False)
    assert skipped == [] and len(examples) == 4
    assert examples[2].answers == ("France", "Hidalgo") and examples[2].answer_starts == (24, 3)
    assert examples[3].answers == () and not examples[3].is_impossible


def test_v2_layout(tmp_path):
    questions = [
        qa("answerable", [("Anne Hidalgo", 45)], is_impossible=False),
        qa(
            "impossible",
            [],
            is_impossible=True,
            plausible_answers=[{"text": "France", "answer_start": 24}],
        ),
    ]
    articles = [{"title": "Paris", "paragraphs": [{"context": CONTEXT, "qas": questions}]}]
    path = write(tmp_path, articles, version="v2.0")
    squad = read_squad_file(path)
    assert squad.version == "v2.0"
    examples, skipped = squad_examples(squad, training=True)
    assert skipped == []
    assert examples == [
        SquadExample(
            "answerable", "Paris", "question answerable?", CONTEXT, ("Anne Hidalgo",), (45,)
        ),
        SquadExample(
            "impossible", "Paris", "question impossible?", CONTEXT, (), (), is_impossible=True
        ),
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"data": [}', r"bad.json is not JSON: Expecting value at line 1 column 11"),
        ('["x"]', r'bad.json is not a SQuAD file: expected an object with a "data" list'),
        ('{"data": [{"title": "T"}]}', r'bad.json: article 0: no "paragraphs" field'),
        ('{"data": [{"paragraphs": [{"qas": []}]}]}', r'article 0 paragraph 0: no "context" field'),
        (
            '{"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q"}]}]}]}',
            r'article 0 paragraph 0 question 0: no "id" field',
        ),
        (
            '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q7", "answers": []}]}]}]}',
            r'bad.json: question q7 \(article 0\): no "question" field',
        ),
        (
            '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q7", "question": "?", '
            '"answers": [{"text": "c", "answer_start": "0"}]}]}]}]}',
            r'question q7 \(article 0\) answer 0: "answer_start" should be int, got str',
        ),
        (
            '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q7", "question": "?", '
            '"answers": [{"answer_start": 0}]}]}]}]}',
            r'question q7 \(article 0\) answer 0: no "text" field',
        ),
        (
            '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q7", "question": "?", '
            '"answers": []}]}]}, {"paragraphs": [{"context": "c", "qas": [{"id": "q7", '
            '"question": "?", "answers": []}]}]}]}',
            r"question q7 \(article 1\): the id is used again \(first in article 0\)",
        ),
    ],
)
def test_errors_name_the_file_and_the_question(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_squad_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"SQuAD file .*nope.json does not exist"):
        read_squad_file(tmp_path / "nope.json")


def test_tfds_records_through_a_stand_in(monkeypatch):
    # Shaped as tfds.as_numpy gives them: text as bytes, answers as arrays; hashed order.
    def record(qid, title, context, question, texts, starts, **extra):
        answers = {
            "text": np.array([t.encode() for t in texts], object),
            "answer_start": np.array(starts, np.int32),
        }
        text = {"id": qid, "title": title, "context": context, "question": question}
        return {k: v.encode() for k, v in text.items()} | {"answers": answers} | extra

    zurich = ("Zurich", "Zürich is big.")
    no, yes = np.bool_(False), np.bool_(True)
    records = [
        record("b2", *zurich, "Is it?", ["big"], [10], is_impossible=no),
        record("a1", "Bern", "Bern is small.", "What?", [], [], is_impossible=yes),
        record("b1", *zurich, "Where?", ["Zürich"], [0], is_impossible=no),
    ]
    calls = []
    stand_in = types.ModuleType("tensorflow_datasets")

    def load(name, split, data_dir, shuffle_files):
        calls.append((name, split, data_dir, shuffle_files))
        if split == "train":
            raise FileNotFoundError("no such dataset\nmore detail")
        return records

    stand_in.load = load
    stand_in.as_numpy = lambda dataset: iter(dataset)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", stand_in)
    squad = read_tfds_squad("squad/v2.0", "validation", data_dir="/tfds")
    assert calls == [("squad/v2.0", "validation", "/tfds", False)]
    assert (squad.source, squad.version) == ("tfds squad/v2.0 validation", "v2.0")
    examples, skipped = squad_examples(squad, training=True)
    assert skipped == []
    # Articles by title, questions by id.
    assert [(e.qid, e.article, e.answers, e.is_impossible) for e in examples] == [
        ("a1", 0, (), True),
        ("b1", 1, ("Zürich",), False),
        ("b2", 1, ("big",), False),
    ]
    assert examples[1].context == "Zürich is big." and examples[2].answer_starts == (10,)
    assert len(squad.articles[1]["paragraphs"]) == 1
    with pytest.raises(
        UserError, match="cannot load TFDS squad/v2.0 split train .*: no such dataset$"
    ):
        read_tfds_squad("squad/v2.0", "train")
    with pytest.raises(
        UserError, match=r"unknown TFDS dataset 'squad/v3' \(known: squad/v1.1 squad/v2.0\)"
    ):
        read_tfds_squad("squad/v3", "train")
    with pytest.raises(UserError, match=r"TFDS squad/v1.1 has no split 'dev'"):
        read_tfds_squad("squad/v1.1", "dev")
