"""SQuAD v1.1 / v2.0, CoNLL-2003 and SWAG through the real `bert-jax` entry point: tiny
fine-tunes (the random 2-layer checkpoint shape of tests/tasks/glue_fixtures.py, with a
vocabulary that has word pieces) write the files the official scripts read; `bert-jax evaluate
--task` re-scores those files to the run's own metrics (and to transformers' copy of
evaluate-v2.0.py and seqeval); `bert-jax evaluate --workdir` rewrites them unchanged; `bert-jax
predict` answers with substrings of the given contexts and tags the given words, as the run's
evaluation did for the same input. Each run is trained once per module."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import io
import json
import pathlib
import re
import sys
import types
from unittest import mock

import flax.linen as nn
import jax
import numpy as np
import pytest

from bert_jax import main as cli
from bert_jax.interop import hf
from bert_jax.tasks.pretraining import PretrainingTask
from tests.tasks import glue_fixtures as world
from tests.tasks.finetuned_run import data_dir, finetuned_copy, read_tsv
from tests.tasks.test_swag import swag_world

# Each module fixture trains a tiny run through the real command.
pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[2]

# 64 entries (the fixture model's embedding rows), with word pieces: "Kingston" is
# king ##s ##ton, so an answer cut from pieces would show "##"; "Zürich" loses its accent.
PUNCTUATION = [",", ".", "?"]
PIECES = ["##s", "##ed", "##ing", "##er", "##ton", "##ville", "##berg", "##ly"]
WORDS = [
    "the", "a", "of", "in", "on", "and", "to", "was", "is", "who", "what", "where", "when",
    "which", "did", "from", "by", "at", "built", "walk", "king", "queen", "river", "city",
    "house", "tree", "road", "bridge", "old", "new", "red", "green", "john", "mary", "anna",
    "peter", "paris", "london", "oslo", "zurich", "ash", "stone", "mill", "north", "south",
    "year", "long", "ship",
]  # fmt: skip
VOCAB = [*world.SPECIAL, *PUNCTUATION, *PIECES, *WORDS]
PERSONS, PLACES = {"john", "mary", "anna", "peter"}, {"paris", "london", "oslo", "zurich"}


# --- running the entry point ---------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str

    def last_json(self) -> dict:
        return json.loads(self.out.strip().splitlines()[-1])


KEPT, AGAIN = "this run's evaluation of that step", "evaluated again"


def scored_from(output: str) -> str | None:
    """The outputs table's "scored from" row: KEPT when a fine-tuning run wrote its files from
    the evaluation it made while training, AGAIN when the checkpoint was evaluated anew."""
    row = re.search(r"^scored from\s+(.+?)\s*$", output, re.M)
    return row and row.group(1)


def bert_jax(*args: str, stdin: list[str] | None = None) -> Result:
    """`bert-jax ARGS` in this process, stdout and stderr captured (stdin: its lines)."""
    out, err = io.StringIO(), io.StringIO()
    data = "".join(line + "\n" for line in stdin or []).encode("utf-8")
    fake_stdin = types.SimpleNamespace(buffer=io.BytesIO(data))
    with (
        mock.patch.object(sys, "stdin", fake_stdin),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = cli.main(list(args))
    return Result(code, out.getvalue(), err.getvalue())


def one_error_line(result: Result, command: str = "evaluate") -> str:
    assert result.code == 2 and result.out == "", result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bert-jax {command}: error: "), result.err
    return lines[0]


def common_flags(workdir, checkpoint, max_length: int) -> list[str]:
    return [
        f"--workdir={workdir}",
        f"--config.init_from={checkpoint}",
        f"--config.data.max_seq_length={max_length}",
        f"--config.data.pad_multiple={max_length}",  # one shape: one compilation per step
        "--config.train.batch_size=8",
        "--config.train.eval_batch_size=16",
        "--config.checkpoint.save_every_minutes=0",
    ]


# --- the tiny world ------------------------------------------------------------------------------


def write_checkpoint(root: pathlib.Path) -> pathlib.Path:
    """A random BertForPreTraining in Hugging Face layout with `VOCAB` as its vocab.txt."""
    assert len(VOCAB) == world.CONFIG.vocab_size
    task = PretrainingTask(world.CONFIG, 16, 2)
    params = task.init_params(jax.random.PRNGKey(0), task.example_batch())
    params = jax.tree.map(np.asarray, jax.device_get(nn.unbox(params)))
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    hf.save_hf(params, world.CONFIG, root / "checkpoint", vocab, lowercase=True)
    return root / "checkpoint"


def surface_word(rng, words=WORDS) -> str:
    """A word as text shows it: some with a suffix piece, capitalised, or accented."""
    word = str(rng.choice(words))
    draw = rng.random()
    if draw < 0.25:
        word += str(rng.choice(PIECES)).removeprefix("##")
    elif draw < 0.3:
        word = "zürich"
    return word.capitalize() if rng.random() < 0.2 else word


def passage(rng, words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The words with commas and full stops after some, and each word's character span."""
    parts, spans, at = [], [], 0
    for i, word in enumerate(words):
        at += bool(parts)  # the space before it
        spans.append((at, at + len(word)))
        if i == len(words) - 1 or rng.random() < 0.1:
            word += "."
        elif rng.random() < 0.1:
            word += ","
        at += len(word)
        parts.append(word)
    return " ".join(parts), spans


def squad_file(rng, prefix: str, articles: int, v2: bool, two_answers: bool) -> dict:
    """Articles of 2 paragraphs of 70-90 words (several 64-token windows each) holding one
    name each ("Annaberg": anna ##berg), which answers the paragraph's 3 questions (learnable
    from the word alone); v2: every third question is impossible. Dev files (`two_answers`)
    give the first paragraph's name no suffix: a few steps teach a tiny model where a name
    starts well before where its last piece ends, and a prediction cut inside a word scores
    F1 0, so without a whole-word answer the run's score could be 0 and the comparison with
    the official scoring vacuous."""
    others = [w for w in WORDS if w not in PERSONS]
    data = []
    for a in range(articles):
        paragraphs = []
        for p in range(2):
            words = [surface_word(rng, others) for _ in range(rng.integers(70, 90))]
            at = int(rng.integers(0, len(words) - 1))
            suffix = str(rng.choice(["", "ton", "ville", "berg"]))
            if two_answers and p == 0:
                suffix = ""
            words[at] = str(rng.choice(sorted(PERSONS))).capitalize() + suffix
            context, spans = passage(rng, words)
            qas = []
            for q in range(3):
                qid = f"{prefix}{a}-{p}-{q}"
                asked = [surface_word(rng, others) for _ in range(rng.integers(2, 6))]
                question = " ".join(["which" if v2 and q == 2 else "who", *asked]) + "?"
                start, end = spans[at]
                answers = [{"text": context[start:end], "answer_start": start}]
                if two_answers and q == 1:  # a second gold answer: the name and the next word
                    longer = context[start : spans[at + 1][1]]
                    answers.append({"text": longer, "answer_start": start})
                qa = {"id": qid, "question": question, "answers": answers}
                if v2:
                    impossible = q == 2
                    qa["is_impossible"] = impossible
                    if impossible:
                        qa["plausible_answers"], qa["answers"] = answers, []
                qas.append(qa)
            paragraphs.append({"context": context, "qas": qas})
        data.append({"title": f"{prefix} article {a}", "paragraphs": paragraphs})
    return {"version": "v2.0" if v2 else "1.1", "data": data}


def misplace_one_answer(train: dict) -> str:
    """Move the first answer of the first question 2 characters on; its id."""
    qa = train["data"][0]["paragraphs"][0]["qas"][0]
    context = train["data"][0]["paragraphs"][0]["context"]
    answer = qa["answers"][0]
    answer["answer_start"] += 2
    start = answer["answer_start"]
    assert context[start : start + len(answer["text"])] != answer["text"]
    return qa["id"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> types.SimpleNamespace:
    """The checkpoint, SQuAD v1.1 / v2.0 train and dev files, and a CoNLL-2003 folder."""
    root = tmp_path_factory.mktemp("span_world")
    rng = np.random.default_rng(0)
    files = {}
    misplaced = {}
    for version, v2 in (("v1.1", False), ("v2.0", True)):
        train = squad_file(rng, f"t{version}-", articles=3, v2=v2, two_answers=False)
        misplaced[version] = misplace_one_answer(train)
        dev = squad_file(rng, f"d{version}-", articles=2, v2=v2, two_answers=True)
        for split, content in (("train", train), ("dev", dev)):
            files[version, split] = root / f"{split}-{version}.json"
            files[version, split].write_text(json.dumps(content, ensure_ascii=False))
    conll = root / "conll"
    conll.mkdir()
    for name, n in (("eng.train", 64), ("eng.testa", 12), ("eng.testb", 14)):
        (conll / name).write_text(conll_text(rng, n))
    return types.SimpleNamespace(
        checkpoint=write_checkpoint(root), squad=files, misplaced=misplaced, conll=conll
    )


def contexts(path: pathlib.Path) -> dict[str, tuple[str, str]]:
    """question id -> (question, context) of a SQuAD file."""
    data = json.loads(path.read_text())["data"]
    return {
        qa["id"]: (qa["question"], paragraph["context"])
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }


def transformers_squad_metrics():
    """transformers' copy of evaluate-v2.0.py, loaded from its file."""
    transformers = pytest.importorskip("transformers", reason="transformers is the reference")
    path = f"{transformers.__path__[0]}/data/metrics/squad_metrics.py"
    spec = importlib.util.spec_from_file_location("transformers.data.metrics.squad_metrics", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_squad(gold: pathlib.Path, predictions: dict, na_probs: dict | None = None) -> dict:
    data = json.loads(gold.read_text())["data"]
    examples = [
        types.SimpleNamespace(qas_id=qa["id"], answers=qa["answers"])
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    return dict(transformers_squad_metrics().squad_evaluate(examples, predictions, na_probs))


# --- SQuAD ---------------------------------------------------------------------------------------


def squad_finetune(tiny, tmp_path_factory, version: str) -> types.SimpleNamespace:
    workdir = tmp_path_factory.mktemp(f"squad_{version}") / "work"
    result = bert_jax(
        "finetune",
        f"--config={REPO / 'configs' / 'squad.py'}:{version}",
        *common_flags(workdir, tiny.checkpoint, 64),
        f"--config.data.train_file={tiny.squad[version, 'train']}",
        f"--config.data.dev_file={tiny.squad[version, 'dev']}",
        "--config.data.doc_stride=16",
        "--config.data.max_query_length=16",
        "--config.train.num_steps=12",
        "--config.train.eval_every_steps=6",
        "--config.train.log_every_steps=6",
        "--config.optimizer.learning_rate=3e-3",
    )
    assert result.code == 0, result.err[-3000:]
    return types.SimpleNamespace(
        workdir=workdir,
        dev=tiny.squad[version, "dev"],
        train=tiny.squad[version, "train"],
        misplaced=tiny.misplaced[version],
        result=result,
        results=json.loads((workdir / "eval_results.json").read_text()),
    )


@pytest.fixture(scope="module")
def squad_v1(tiny, tmp_path_factory):
    return squad_finetune(tiny, tmp_path_factory, "v1.1")


@pytest.fixture(scope="module")
def squad_v2(tiny, tmp_path_factory):
    return squad_finetune(tiny, tmp_path_factory, "v2.0")


def check_answers_are_context_text(run) -> dict[str, str]:
    """predictions.json and nbest.json hold text cut from each question's own context."""
    given = contexts(run.dev)
    predictions = json.loads((run.workdir / "predictions.json").read_text())
    nbest = json.loads((run.workdir / "nbest.json").read_text())
    assert set(predictions) == set(nbest) == set(given)
    for qid, answer in predictions.items():
        assert answer in given[qid][1] and "##" not in answer, (qid, answer)
        entries = nbest[qid]
        assert 1 <= len(entries) <= 20
        assert sum(e["probability"] for e in entries) == pytest.approx(1.0, abs=1e-6)
        assert all(e["text"] in given[qid][1] for e in entries)
    return predictions


def test_squad_v1_run_skips_the_misplaced_answer_and_writes_the_official_files(squad_v1):
    err = squad_v1.result.err
    skipped = [line for line in err.splitlines() if "skipped" in line]
    assert len(skipped) == 1, err
    assert f"skipped 1 train questions of {squad_v1.train}" in skipped[0]
    assert f"question {squad_v1.misplaced}: answer 0" in skipped[0]
    assert "is not at its offset" in skipped[0]
    # 12 dev questions in windows of 64 tokens every 16: several windows each.
    windows = re.search(r"squad v1\.1 dev: 12 questions of 2 articles -> (\d+) windows", err)
    assert windows and int(windows.group(1)) >= 3 * 12, err

    results = squad_v1.results
    assert results["task"] == "squad/v1.1"
    assert results["files"] == ["eval_results.json", "predictions.json", "nbest.json"]
    assert {"exact_match", "f1"} <= set(results["metrics"])
    assert not (squad_v1.workdir / "null_odds.json").exists()
    predictions = check_answers_are_context_text(squad_v1)
    assert all(predictions.values())  # v1.1 always answers
    # The official scoring of the written file gives the run's metrics (evaluate-v2.0.py's
    # exact and f1 are v1.1's when every gold and predicted answer has words).
    reference = reference_squad(squad_v1.dev, predictions)
    assert results["metrics"]["exact_match"] == pytest.approx(reference["exact"], abs=1e-9)
    assert results["metrics"]["f1"] == pytest.approx(reference["f1"], abs=1e-9)
    assert results["metrics"]["f1"] > 0  # not a vacuous agreement


def test_squad_v1_evaluate_scores_the_files_and_the_workdir_alike(squad_v1):
    workdir = squad_v1.workdir
    written = squad_v1.results["metrics"]
    scored = bert_jax(
        "evaluate",
        "--task=squad_v1.1",
        f"--gold={squad_v1.dev}",
        f"--predictions={workdir / 'predictions.json'}",
        "--json",
    )
    assert scored.code == 0, scored.err
    assert scored.last_json() == pytest.approx(
        {k: written[k] for k in ("exact_match", "f1")}, abs=1e-9
    )
    assert "missing" not in scored.out and "extra" not in scored.out

    before = {name: (workdir / name).read_text() for name in ("predictions.json", "nbest.json")}
    rescored = bert_jax("evaluate", f"--workdir={workdir}", "--json")
    assert rescored.code == 0, rescored.err
    # The run wrote its files from its own evaluation; `evaluate` ran the checkpoint again, and
    # both agree.
    assert scored_from(squad_v1.result.out) == KEPT
    assert scored_from(rescored.out) == AGAIN
    content = rescored.last_json()
    assert content["step"] == squad_v1.results["step"]
    assert content["metrics"] == pytest.approx(written, abs=1e-6)
    assert content["files"] == squad_v1.results["files"]
    for name, text in before.items():
        assert (workdir / name).read_text() == text, name


def predict_squad(run, lines: list[str]) -> list[dict]:
    result = bert_jax("predict", f"--workdir={run.workdir}", stdin=lines)
    assert result.code == 0, result.err
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert len(rows) == len(lines)
    return rows


def check_same_nbest(run, qids: list[str], rows: list[dict]) -> None:
    """Each row's 5 best are the first 5 of the run's nbest.json for that question."""
    nbest = json.loads((run.workdir / "nbest.json").read_text())
    for qid, row in zip(qids, rows, strict=True):
        written = nbest[qid][: len(row["nbest"])]
        assert [n["text"] for n in row["nbest"]] == [n["text"] for n in written], qid
        np.testing.assert_allclose(
            [n["probability"] for n in row["nbest"]],
            [n["probability"] for n in written],
            atol=1e-6,
        )


def test_squad_v1_predict_answers_from_the_given_contexts(squad_v1):
    given = contexts(squad_v1.dev)
    predictions = json.loads((squad_v1.workdir / "predictions.json").read_text())
    qids = list(given)
    new_context = "The old bridge of Kingston was built by Peter Ashton in Zürich, walking north."
    lines = [f"{given[q][0]}\t{given[q][1]}" for q in qids] + [f"who built it?\t{new_context}"]
    rows = predict_squad(squad_v1, lines)
    for line, row in zip(lines, rows, strict=True):
        context = line.split("\t")[1]
        assert row["answer"] and row["answer"] in context and "##" not in row["answer"], row
        assert 1 <= len(row["nbest"]) <= 5
        assert all(n["text"] in context and "##" not in n["text"] for n in row["nbest"])
        assert row["answer"] == row["nbest"][0]["text"]
    # The same question and context: the same windows, so the run's answers.
    assert [row["answer"] for row in rows[:-1]] == [predictions[q] for q in qids]
    check_same_nbest(squad_v1, qids, rows[:-1])


def test_squad_v2_writes_null_odds_and_the_v2_metrics(squad_v2):
    results = squad_v2.results
    assert results["task"] == "squad/v2.0"
    assert results["files"] == [
        "eval_results.json",
        "predictions.json",
        "nbest.json",
        "null_odds.json",
    ]
    metrics = results["metrics"]
    for key in ("exact", "f1", "total", "best_f1", "best_f1_thresh", "null_threshold"):
        assert key in metrics, key
    for prefix in ("HasAns", "NoAns"):
        assert {f"{prefix}_exact", f"{prefix}_f1", f"{prefix}_total"} <= set(metrics)
    assert (metrics["total"], metrics["HasAns_total"], metrics["NoAns_total"]) == (12, 8, 4)
    assert f"question {squad_v2.misplaced}: answer 0" in squad_v2.result.err

    predictions = check_answers_are_context_text(squad_v2)
    null_odds = json.loads((squad_v2.workdir / "null_odds.json").read_text())
    assert set(null_odds) == set(predictions)
    # "" exactly where the null score wins by more than the threshold the run chose.
    threshold = metrics["null_threshold"]
    assert threshold == metrics["best_f1_thresh"]
    for qid, odds in null_odds.items():
        assert (predictions[qid] == "") == (odds > threshold), qid
    reference = reference_squad(squad_v2.dev, predictions)
    for key in ("exact", "f1", "HasAns_f1", "NoAns_f1"):
        assert metrics[key] == pytest.approx(reference[key], abs=1e-9), key


def test_squad_v2_evaluate_with_and_without_null_odds(squad_v2):
    workdir, metrics = squad_v2.workdir, squad_v2.results["metrics"]
    files = [f"--gold={squad_v2.dev}", f"--predictions={workdir / 'predictions.json'}"]
    plain = bert_jax("evaluate", "--task=squad_v2.0", *files, "--json")
    assert plain.code == 0, plain.err
    scored = plain.last_json()
    assert "best_f1_thresh" not in scored
    assert scored == pytest.approx({k: metrics[k] for k in scored}, abs=1e-9)

    odds = workdir / "null_odds.json"
    with_odds = bert_jax("evaluate", "--task=squad_v2.0", *files, f"--na_probs={odds}", "--json")
    assert with_odds.code == 0, with_odds.err
    scored = with_odds.last_json()
    predictions = json.loads((workdir / "predictions.json").read_text())
    reference = reference_squad(squad_v2.dev, predictions, json.loads(odds.read_text()))
    assert scored == pytest.approx(reference, abs=1e-9)
    # Past the run's threshold every answer is already "": the best F1 and its threshold are
    # the ones the run searched on its always-answering predictions.
    assert scored["best_f1"] == pytest.approx(metrics["best_f1"], abs=1e-9)
    assert scored["best_f1_thresh"] == pytest.approx(metrics["best_f1_thresh"], abs=1e-9)

    rescored = bert_jax("evaluate", f"--workdir={workdir}", "--json")
    assert rescored.code == 0, rescored.err
    assert rescored.last_json()["metrics"] == pytest.approx(metrics, abs=1e-6)


def test_squad_v2_predict_answers_as_the_run_did(squad_v2):
    given = contexts(squad_v2.dev)
    predictions = json.loads((squad_v2.workdir / "predictions.json").read_text())
    rows = predict_squad(squad_v2, [f"{q}\t{c}" for q, c in given.values()])
    assert [row["answer"] for row in rows] == [predictions[q] for q in given]
    check_same_nbest(squad_v2, list(given), rows)
    for row, (_, context) in zip(rows, given.values(), strict=True):
        assert row["answer"] in context and "##" not in row["answer"]


# --- scoring files: missing and extra ids, bad input ------------------------------------------


def gold_answers(path: pathlib.Path) -> dict[str, str]:
    data = json.loads(path.read_text())["data"]
    return {
        qa["id"]: qa["answers"][0]["text"] if qa["answers"] else ""
        for article in data
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }


@pytest.mark.parametrize("version", ["v1.1", "v2.0"])
def test_missing_and_extra_ids_are_listed_and_scored_as_the_official_scripts(
    tiny, tmp_path, version
):
    gold = tiny.squad[version, "dev"]
    answers = gold_answers(gold)
    qids = [q for q, text in answers.items() if text]
    missing, wrong = qids[:2], qids[2]
    predictions = {q: text for q, text in answers.items() if q not in missing}
    predictions[wrong] = "nothing alike"
    predictions["not-a-question"] = "anything"
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(predictions))

    result = bert_jax(
        "evaluate", f"--task=squad_{version}", f"--gold={gold}", f"--predictions={path}", "--json"
    )
    assert result.code == 0, result.err
    assert f"2 missing predictions: {missing[0]}, {missing[1]}" in result.out
    assert "1 extra predictions: not-a-question" in result.out
    n = len(answers)  # 12 questions; one answer wrong, two missing
    if version == "v1.1":  # a missing question counts, scoring 0
        assert "missing predictions score 0" in result.out
        expected = {"exact_match": 100 * (n - 3) / n, "f1": 100 * (n - 3) / n}
    else:  # a missing question is left out of every total
        assert "left out of the totals" in result.out
        expected = {"exact": 100 * (n - 3) / (n - 2), "f1": 100 * (n - 3) / (n - 2)}
        expected["total"] = n - 2
    assert {k: result.last_json()[k] for k in expected} == pytest.approx(expected, abs=1e-9)


def test_scoring_errors_are_one_line(tiny, tmp_path):
    gold = tiny.squad["v1.1", "dev"]
    predictions = tmp_path / "predictions.json"
    predictions.write_text(json.dumps(gold_answers(gold)))

    def evaluate(task, gold_path, predictions_path, *more):
        result = bert_jax(
            "evaluate",
            f"--task={task}",
            f"--gold={gold_path}",
            f"--predictions={predictions_path}",
            *more,
        )
        return one_error_line(result)

    line = evaluate("squad_v1.1", tmp_path / "no.json", predictions)
    assert f"SQuAD file {tmp_path / 'no.json'} does not exist" in line
    line = evaluate("squad_v1.1", gold, tmp_path / "none.json")
    assert f"predictions file {tmp_path / 'none.json'} does not exist" in line
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(list(gold_answers(gold).values())))
    line = evaluate("squad_v1.1", gold, as_list)
    assert "holds a JSON list, expected an object of question id -> value" in line
    line = evaluate("squad_v3.0", gold, predictions)
    assert "unknown task 'squad_v3.0' to score: one of squad_v1.1, squad_v2.0, conll2003" in line
    line = evaluate("squad_v1.1", gold, predictions, f"--na_probs={predictions}")
    assert "--na_probs is for squad_v2.0" in line

    testb = tiny.conll / "eng.testb"
    lines = testb.read_text().splitlines()
    changed = next(i for i, text in enumerate(lines) if text and not text.startswith("-DOC"))
    lines[changed] = "xyzzy " + lines[changed].split(" ", 1)[1]
    other = tmp_path / "predictions_testb.txt"
    other.write_text("\n".join(lines) + "\n")
    line = evaluate("conll2003", testb, other)
    assert f"{other} line {changed + 1}: the words differ from {testb} line {changed + 1}" in line

    missing = one_error_line(bert_jax("evaluate", "--task=squad_v1.1", f"--gold={gold}"))
    assert "--task needs --gold=PATH and --predictions=PATH" in missing


# --- CoNLL-2003 --------------------------------------------------------------------------------


def tag_of(word: str) -> str:
    root = word.lower().rstrip(".,")
    return "I-PER" if root in PERSONS else "I-LOC" if root in PLACES | {"zürich"} else "O"


def conll_text(rng, sentences: int) -> str:
    """The original 4-column layout, -DOCSTART- every 5 sentences; persons and places are
    learnable from their words (IOB1: neighbours of one type form one chunk)."""
    lines = []
    names = sorted(PERSONS | PLACES)
    for i in range(sentences):
        if i % 5 == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        words = [surface_word(rng) for _ in range(rng.integers(3, 10))]
        for _ in range(rng.integers(1, 3)):
            words[rng.integers(0, len(words))] = str(rng.choice(names)).capitalize()
        lines += [f"{w} NN I-NP {tag_of(w)}" for w in words] + [""]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def ner_run(tiny, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ner") / "work"
    result = bert_jax(
        "finetune",
        f"--config={REPO / 'configs' / 'ner.py'}:conll2003",
        *common_flags(workdir, tiny.checkpoint, 32),
        f"--config.data.data_dir={tiny.conll}",
        "--config.train.num_steps=16",
        "--config.train.eval_every_steps=8",
        "--config.train.log_every_steps=8",
        "--config.optimizer.learning_rate=3e-3",
    )
    assert result.code == 0, result.err[-3000:]
    return types.SimpleNamespace(
        workdir=workdir,
        result=result,
        results=json.loads((workdir / "eval_results.json").read_text()),
    )


def read_columns(path: pathlib.Path) -> list[list[list[str]]]:
    """Sentences of word lines (split into columns), -DOCSTART- lines left out."""
    sentences, current = [], []
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
            current = []
            continue
        current.append(fields)
    return sentences + ([current] if current else [])


def test_ner_run_writes_conlleval_files_that_score_to_its_metrics(tiny, ner_run):
    seqeval = pytest.importorskip("seqeval.metrics", reason="seqeval is the NER reference")
    workdir, metrics = ner_run.workdir, ner_run.results["metrics"]
    assert ner_run.results["task"] == "ner/conll2003"
    assert ner_run.results["files"] == [
        "eval_results.json",
        "predictions_testa.txt",
        "predictions_testb.txt",
    ]
    for split in ("testa", "testb"):
        gold = read_columns(tiny.conll / f"eng.{split}")
        written = read_columns(workdir / f"predictions_{split}.txt")
        assert [[(w[0], w[-1]) for w in s] for s in gold] == [
            [(w[0], w[1]) for w in s] for s in written
        ]
        scored = bert_jax(
            "evaluate",
            "--task=conll2003",
            f"--gold={tiny.conll / f'eng.{split}'}",
            f"--predictions={workdir / f'predictions_{split}.txt'}",
            "--json",
        )
        assert scored.code == 0, scored.err
        # The file scoring prints percent, as conlleval does; the run's metrics are fractions.
        percent = scored.last_json()
        for key in ("precision", "recall", "f1"):
            assert percent[key] == pytest.approx(100 * metrics[f"{split}/{key}"], abs=1e-9)
        reference = seqeval.f1_score(
            [[w[1] for w in s] for s in written], [[w[2] for w in s] for s in written]
        )
        assert percent["f1"] == pytest.approx(100 * reference, abs=1e-9)
    assert metrics["testb/f1"] > 0.5, metrics  # it learned: the agreement is not 0 == 0


def test_ner_evaluate_workdir_rewrites_the_same_files(ner_run):
    workdir = ner_run.workdir
    before = {s: (workdir / f"predictions_{s}.txt").read_text() for s in ("testa", "testb")}
    result = bert_jax("evaluate", f"--workdir={workdir}", "--json")
    assert result.code == 0, result.err
    assert scored_from(ner_run.result.out) == KEPT
    assert scored_from(result.out) == AGAIN
    assert result.last_json()["metrics"] == pytest.approx(ner_run.results["metrics"], abs=1e-6)
    for split, text in before.items():
        assert (workdir / f"predictions_{split}.txt").read_text() == text


def test_ner_predict_tags_the_given_words(tiny, ner_run):
    written = read_columns(ner_run.workdir / "predictions_testb.txt")
    lines = [" ".join(w[0] for w in s) for s in written]
    lines.append("Mary Stoneberg walked to Zürich, by the old  Kingston bridge.")
    result = bert_jax("predict", f"--workdir={ner_run.workdir}", stdin=lines)
    assert result.code == 0, result.err
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert len(rows) == len(lines)
    for line, row in zip(lines, rows, strict=True):
        assert row["words"] == line.split() and len(row["tags"]) == len(row["words"])
        for entity in row["entities"]:
            words = row["words"][entity["start"] : entity["end"]]
            assert entity["text"] == " ".join(words) and "##" not in entity["text"]
            assert entity["type"] in ("PER", "LOC")
    # The same sentences in the same order: the tags the run wrote.
    assert [row["tags"] for row in rows[:-1]] == [[w[2] for w in s] for s in written]
    assert sum(len(row["entities"]) for row in rows) > 0


# --- GLUE files and SWAG ------------------------------------------------------------------------


def test_glue_scoring_of_a_runs_predictions_equals_its_results(tmp_path_factory):
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference")
    run = finetuned_copy(tmp_path_factory, "span_tasks_glue")
    written = json.loads((run / "eval_results.json").read_text())["splits"]["dev"]
    gold = data_dir(run) / "MRPC" / "dev.tsv"
    result = bert_jax(
        "evaluate",
        "--task=glue/mrpc",
        f"--gold={gold}",
        f"--predictions={run / 'predictions_dev.tsv'}",
        "--json",
    )
    assert result.code == 0, result.err
    scored = result.last_json()
    assert set(scored) == {"f1", "accuracy"}
    assert scored == pytest.approx({k: written[k] for k in scored}, abs=1e-6)
    labels = [int(row["Quality"]) for row in read_tsv(gold)]
    predicted = [int(row["prediction"]) for row in read_tsv(run / "predictions_dev.tsv")]
    assert scored["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(labels, predicted))
    assert scored["f1"] == pytest.approx(sklearn_metrics.f1_score(labels, predicted))


def test_swag_run_writes_its_predictions(tmp_path_factory):
    root = tmp_path_factory.mktemp("swag")
    checkpoint, data = swag_world(root, train=16, val=10)
    workdir = root / "work"
    result = bert_jax(
        "finetune",
        f"--config={REPO / 'configs' / 'swag.py'}",
        *common_flags(workdir, checkpoint, 32),
        f"--config.data.data_dir={data}",
        "--config.train.num_steps=2",
        "--config.optimizer.learning_rate=1e-3",
        # A wide random choice scorer: choices whose probabilities differ in 6 decimals.
        "--config.model.initializer_range=0.5",
    )
    assert result.code == 0, result.err[-3000:]
    results = json.loads((workdir / "eval_results.json").read_text())
    assert results["task"] == "swag"
    assert results["files"] == ["eval_results.json", "predictions_val.tsv"]
    with open(data / "val.csv", newline="") as f:
        gold = [int(row["label"]) for row in csv.DictReader(f)]
    rows = read_tsv(workdir / "predictions_val.tsv")
    assert sorted(int(row["index"]) for row in rows) == list(range(len(gold)))
    by_index = {int(row["index"]): row for row in rows}
    right = 0
    for index, label in enumerate(gold):
        row = by_index[index]
        assert int(row["label"]) == label
        probabilities = [float(row[f"probability_{i}"]) for i in range(4)]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
        # The predicted choice has the highest probability (up to the file's 6 decimals).
        assert probabilities[int(row["prediction"])] >= max(probabilities) - 1e-6
        right += int(row["prediction"]) == label
    assert results["metrics"]["accuracy"] == pytest.approx(right / len(gold), abs=1e-9)

    written = (workdir / "predictions_val.tsv").read_text()
    rescored = bert_jax("evaluate", f"--workdir={workdir}", "--json")
    assert rescored.code == 0, rescored.err
    assert scored_from(result.out) == KEPT
    assert scored_from(rescored.out) == AGAIN
    assert rescored.last_json()["metrics"] == pytest.approx(results["metrics"], abs=1e-6)
    assert (workdir / "predictions_val.tsv").read_text() == written
    refused = bert_jax("predict", f"--workdir={workdir}", stdin=["a\tb"])
    assert "does not handle swag runs" in one_error_line(refused, "predict")


def test_an_evaluation_of_another_step_is_not_reused(squad_v1):
    """The outputs come from the training session's evaluation only when its step is still the
    run's best on disk (a resumed run's best may be an earlier session's step)."""
    from bert_jax.tasks import task_outputs
    from bert_jax.trainer.loop import BestEvaluation

    task = types.SimpleNamespace(main_metric="f1", higher_is_better=True)
    best = squad_v1.results["step"]
    kept = task_outputs._kept(squad_v1.workdir, BestEvaluation(best, 1.0, task, {"dev": []}))
    assert kept is not None and kept.step == best
    for step in {6, 12} - {best}:
        other = BestEvaluation(step, 1.0, task, {"dev": []})
        assert task_outputs._kept(squad_v1.workdir, other) is None
    assert task_outputs._kept(squad_v1.workdir, None) is None
