"""The transformers SQuAD reference script: its scoring against hand-worked official cases, its
window labels and decoding on a small hand-made file, and one end-to-end run on a tiny model."""

import json
import subprocess
import sys

import pytest

from bert_jax.bench.peers import hf_squad_ref as ref

CONTEXTS = [
    "The Eiffel Tower was finished in 1889 in Paris. It was built by the company of Gustave "
    "Eiffel for the World Fair, and for forty-one years it was the tallest structure in the "
    "world, until the Chrysler Building in New York was finished in 1930. Today it has three "
    "levels for visitors, with restaurants on the first and second levels, and the top level "
    "is 276 metres above the ground.",
    "Ada Lovelace wrote the first published program in 1843, for the Analytical Engine of "
    "Charles Babbage.",
    "The river Thames flows through London to the North Sea.",
]
QAS = [  # (context, question, answer)
    (0, "When was the Eiffel Tower finished?", "1889"),
    (0, "Who built the Eiffel Tower?", "the company of Gustave Eiffel"),
    (0, "Which building became the tallest in 1930?", "the Chrysler Building"),
    (0, "How high is the top level?", "276 metres"),
    (1, "Who wrote the first published program?", "Ada Lovelace"),
    (1, "For which machine was it written?", "the Analytical Engine"),
    (2, "Where does the Thames flow to?", "the North Sea"),
]


def squad_file(tmp_path):
    """A SQuAD v1.1 JSON file with one article per context."""
    articles = [
        {"title": f"a{i}", "paragraphs": [{"context": c, "qas": []}]}
        for i, c in enumerate(CONTEXTS)
    ]
    for n, (c, question, answer) in enumerate(QAS):
        start = CONTEXTS[c].index(answer)
        qa = {
            "id": f"q{n}",
            "question": question,
            "answers": [{"text": answer, "answer_start": start}],
        }
        articles[c]["paragraphs"][0]["qas"].append(qa)
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": "1.1", "data": articles}))
    return path


def tokenizer(tmp_path):
    """A BertTokenizerFast over exactly the fixture's words, so no test needs a downloaded vocab."""
    transformers = pytest.importorskip("transformers")
    words = {w for text in CONTEXTS + [q for _, q, _ in QAS] for w in _pieces(text)}
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return transformers.BertTokenizerFast(
        vocab_file=str(tmp_path / "vocab.txt"), do_lower_case=True
    )


def _pieces(text):
    import re

    return re.findall(r"\w+|[^\w\s]", text.lower())


# --- official SQuAD v1.1 scoring, hand-worked --------------------------------------------------


def test_normalisation_drops_case_punctuation_articles_and_extra_spaces():
    assert ref.normalize_answer("  The  Cat, sat!") == "cat sat"
    assert ref.normalize_answer("an apple") == "apple"
    assert ref.normalize_answer("Theatre") == "theatre"  # "the" only as a whole word
    assert ref.exact_match("the Chrysler Building.", "Chrysler building")


def test_token_f1_counts_shared_tokens_with_multiplicity():
    assert ref.token_f1("cat", "cat sat") == pytest.approx(2 * 1 * 0.5 / 1.5)
    # "the the" normalises to nothing: no tokens, F1 0 as the official script gives.
    assert ref.token_f1("the the", "cat") == 0.0
    # "a" is an article: "a a b" -> [b]; against [b, b, c]: precision 1, recall 1/3, F1 1/2.
    assert ref.token_f1("a a b", "b b c") == pytest.approx(0.5)
    assert ref.token_f1("x x y", "x x z") == pytest.approx(2 / 3)


def test_scores_take_the_best_gold_answer_and_count_missing_predictions_as_zero():
    questions = [
        {"id": "a", "answers": [{"text": "Denver Broncos"}, {"text": "the Broncos"}]},
        {"id": "b", "answers": [{"text": "1889"}]},
    ]
    scores = ref.squad_scores(questions, {"a": "Broncos"})
    assert scores["exact_match"] == pytest.approx(50.0)  # "the Broncos" -> "broncos"
    assert scores["f1"] == pytest.approx(50.0)


def test_article_slices_parse_as_python_slices():
    assert ref.parse_slice("0:8") == slice(0, 8)
    assert ref.parse_slice("-10:") == slice(-10, None)
    args = ref.parse_args(["m", "d", "0", "--eval_articles", "-10:", "--train_articles", "1:3"])
    assert (args.eval_articles, args.train_articles) == (slice(-10, None), slice(1, 3))


# --- windows, labels and decoding ----------------------------------------------------------


def test_every_window_label_is_the_answer_or_cls_when_the_answer_is_outside(tmp_path):
    tok = tokenizer(tmp_path)
    questions = ref.load_questions(squad_file(tmp_path), slice(None))
    windows = ref.make_windows(tok, questions, max_len=40, stride=16, max_query=64)
    assert len(windows["input_ids"]) > len(questions)  # the long context was cut into windows
    starts, ends = ref.train_labels(windows, questions, tok.cls_token_id)
    labelled = set()
    for w, (s, e) in enumerate(zip(starts, ends, strict=True)):
        q = questions[windows["overflow_to_sample_mapping"][w]]
        answer = q["answers"][0]
        offsets, seq = windows["offset_mapping"][w], windows.sequence_ids(w)
        if s == 0:
            assert e == 0
            context_chars = [o for o, k in zip(offsets, seq, strict=True) if k == 1]
            inside = context_chars[0][0] <= answer["answer_start"] and context_chars[-1][1] >= (
                answer["answer_start"] + len(answer["text"])
            )
            assert not inside, (q["id"], w)
            continue
        assert seq[s] == seq[e] == 1
        assert q["context"][offsets[s][0] : offsets[e][1]] == answer["text"]
        labelled.add(q["id"])
    assert labelled == {q["id"] for q in questions}


def test_long_questions_are_cut_to_max_query_tokens(tmp_path):
    tok = tokenizer(tmp_path)
    question = "Who built the Eiffel Tower?"
    assert ref.cut_question(tok, question, 3) == "Who built the"
    assert ref.cut_question(tok, question, 64) == question


def test_decoding_answers_from_context_only_within_the_length_limit(tmp_path, monkeypatch):
    np = pytest.importorskip("numpy")
    monkeypatch.setattr(ref, "MAX_ANSWER", 2)
    tok = tokenizer(tmp_path)
    questions = ref.load_questions(squad_file(tmp_path), slice(1, 2))[:1]  # Ada Lovelace
    windows = ref.make_windows(tok, questions, max_len=64, stride=16, max_query=64)
    assert len(windows["input_ids"]) == 1
    first = windows.sequence_ids(0).index(1)  # first context token
    start, end = np.full((2, len(windows["input_ids"][0])), -100.0, np.float32)
    start[1], end[2] = 50.0, 50.0  # the best pair lies on the question: never an answer
    start[first + 5], end[first + 2] = 40.0, 40.0  # end before start
    end[first + 2] = 40.0  # "Ada Lovelace wrote": three tokens, over the limit of 2
    start[first], end[first + 1] = 10.0, 10.0  # the best valid span
    answers = ref.best_answers(questions, windows, [(start, end)])
    assert answers == {questions[0]["id"]: "Ada Lovelace"}
    monkeypatch.setattr(ref, "MAX_ANSWER", 3)
    answers = ref.best_answers(questions, windows, [(start, end)])
    assert answers == {questions[0]["id"]: "Ada Lovelace wrote"}


# --- end to end ----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_script_runs_end_to_end_on_a_tiny_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    model_dir = tmp_path / "model"
    tok = tokenizer(tmp_path)
    config = transformers.BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    transformers.BertForQuestionAnswering(config).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    data = squad_file(tmp_path)
    result = subprocess.run(
        [sys.executable, ref.__file__, str(model_dir), str(data), "0"]
        + ["--train_articles", "0:2", "--eval_articles", "-2:", "--epochs", "2"]
        + ["--batch", "2", "--max_len", "40", "--stride", "16", "--dropout", "0"]
        + ["--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["train_questions"] == 6 and line["eval_questions"] == 3
    assert line["dropout"] == 0.0  # --dropout over the checkpoint's 0.1
    assert line["train_windows"] > 6
    assert line["train_steps"] == 2 * -(-line["train_windows"] // 2)
    assert 0.0 <= line["exact_match"] <= line["f1"] <= 100.0
    predictions = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert sorted(predictions) == ["q4", "q5", "q6"]
    contexts = {"q4": CONTEXTS[1], "q5": CONTEXTS[1], "q6": CONTEXTS[2]}
    assert all(text in contexts[q] for q, text in predictions.items())
