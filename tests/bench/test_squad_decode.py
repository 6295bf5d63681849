"""`bert-jax bench squad_decode` on a few questions: it windows them, decodes random logits saved
to a file, and reports the figures, with --json as one JSON line."""

from __future__ import annotations

import json

from bert_jax.bench import squad_decode as bench_squad_decode

CONTEXT = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to "
    "Normandy, a region in France. They were descended from Norse raiders and pirates from "
    "Denmark, Iceland and Norway who, under their leader Rollo, agreed to swear fealty to King "
    "Charles III of West Francia."
)
QUESTIONS = [
    ("q1", "In what country is Normandy located?", "France"),
    ("q2", "When were the Normans in Normandy?", "10th and 11th centuries"),
    ("q3", "Who was the Norse leader?", "Rollo"),
]


def squad_file(tmp_path):
    qas = [
        {
            "id": qid,
            "question": question,
            "answers": [{"text": answer, "answer_start": CONTEXT.index(answer)}],
        }
        for qid, question, answer in QUESTIONS
    ]
    data = {
        "version": "1.1",
        "data": [{"title": "Normans", "paragraphs": [{"context": CONTEXT, "qas": qas}]}],
    }
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data))
    return path


def test_bench_reports_questions_windows_and_rate(tmp_path, uncased_vocab, capsys):
    args = ["--data", str(squad_file(tmp_path)), "--vocab", str(uncased_vocab), "--repeat", "2"]
    # Windows of 48 tokens with a stride of 16: the context needs several of them.
    args += ["--max_length", "48", "--doc_stride", "16", "--max_query", "16", "--json"]
    assert bench_squad_decode.main(args) == 0
    out = capsys.readouterr().out
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["benchmark"] == "squad_decode"
    assert figures["questions"] == 3
    assert figures["windows"] > 3
    assert len(figures["seconds_all"]) == 2 and figures["seconds"] > 0
    assert figures["questions_per_s"] == 3 / figures["seconds"]
    assert figures["answered"] == 3 and figures["nbest_mb"] > 0
    assert "questions/s" in out and "post-processing s (median)" in out


def test_bench_times_v2_and_peaked_logits(tmp_path, uncased_vocab, capsys):
    args = ["--data", str(squad_file(tmp_path)), "--vocab", str(uncased_vocab), "--repeat", "1"]
    args += ["--version_2", "--peaked", "--json"]
    assert bench_squad_decode.main(args) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["version_2"] and figures["peaked"]
    assert figures["windows"] == 3  # one 384-token window per question
