"""SQuAD post-processing: hand-made windows and logits whose answer is known, and equality with
a per-pair Python transcription of the original BERT run_squad.py `write_predictions` rules on
random logits over many windows."""

from __future__ import annotations

import collections
import json
import math

import numpy as np
import pytest

from bert_jax.tasks import squad_decode
from bert_jax.tasks.squad_data import SquadExample
from bert_jax.tasks.squad_windows import Windows, make_windows
from bert_jax.text.load import load_tokenizer

LOW = -20.0  # the logit of every position a test does not set


# --- building windows by hand ---------------------------------------------------------------


def words_context(words: list[str], gaps: list[str] | None = None) -> tuple[str, list]:
    """A context of `words` joined by `gaps` (default one space), and each word's offsets."""
    gaps = gaps or [" "] * (len(words) - 1)
    text, offsets = "", []
    for k, word in enumerate(words):
        offsets.append((len(text), len(text) + len(word)))
        text += word + (gaps[k] if k < len(gaps) else "")
    return text, offsets


def is_max_context(spans: list[tuple[int, int]], span_index: int, token: int) -> bool:
    """run_squad's `_check_is_max_context`: the token's best window has the most context on
    its shorter side (+0.01 per window token); the first such window on ties."""
    best_score, best = None, None
    for k, (start, length) in enumerate(spans):
        end = start + length - 1
        if not start <= token <= end:
            continue
        score = min(token - start, end - token) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best = score, k
    return best == span_index


def hand_windows(contexts: list[tuple[list, list, int]]) -> Windows:
    """Windows of examples given as (token offsets, doc spans (start, length), question length):
    [CLS] question [SEP] context tokens [SEP], in example then span order."""
    offsets, max_context, example = [], [], []
    for index, (token_offsets, spans, question_length) in enumerate(contexts):
        for k, (start, length) in enumerate(spans):
            head = [(-1, -1)] * (question_length + 2)
            rows = head + list(token_offsets[start : start + length]) + [(-1, -1)]
            flags = [False] * len(head)
            flags += [is_max_context(spans, k, t) for t in range(start, start + length)]
            offsets.append(np.array(rows, np.int32).reshape(-1, 2))
            max_context.append(np.array(flags + [False], bool))
            example.append(index)
    return Windows(
        input_ids=[np.zeros(len(o), np.int32) for o in offsets],
        segment_ids=[np.zeros(len(o), np.int32) for o in offsets],
        offsets=offsets,
        max_context=max_context,
        example=np.array(example, np.int64),
        start_positions=np.zeros(len(offsets), np.int32),
        end_positions=np.zeros(len(offsets), np.int32),
    )


def example(qid: str, context: str) -> SquadExample:
    return SquadExample(
        qid=qid, title="", question="?", context=context, answers=(), answer_starts=()
    )


def position(spans, question_length, window: int, token: int) -> int:
    """Where context token `token` sits in window `window`."""
    return question_length + 2 + token - spans[window][0]


def blank_logits(windows: Windows, extra: int = 3) -> tuple[np.ndarray, np.ndarray]:
    length = max(len(o) for o in windows.offsets) + extra
    shape = (len(windows.offsets), length)
    return np.full(shape, LOW, np.float32), np.full(shape, LOW, np.float32)


TWENTY = [f"w{i}" for i in range(20)]
OVERLAP = [(0, 12), (8, 12)]  # two windows sharing tokens 8..11
QLEN = 2


@pytest.fixture
def overlapping():
    """One question over twenty words in two overlapping windows."""
    context, offsets = words_context(TWENTY)
    windows = hand_windows([(offsets, OVERLAP, QLEN)])
    return windows, [example("q", context)]


def set_span(logits, window: int, start_token: int, end_token: int, start: float, end: float):
    """Start and end logits of context tokens in window `window` of questions over OVERLAP
    (window 2q + k is the question's k-th)."""
    start_logits, end_logits = logits
    span = window % len(OVERLAP)
    start_logits[window, position(OVERLAP, QLEN, span, start_token)] = start
    end_logits[window, position(OVERLAP, QLEN, span, end_token)] = end


# --- hand-worked cases ----------------------------------------------------------------------


def test_best_span_is_picked_across_overlapping_windows(overlapping):
    windows, examples = overlapping
    logits = blank_logits(windows)
    set_span(logits, 0, 2, 3, 3.0, 3.0)
    set_span(logits, 1, 15, 16, 4.0, 4.0)
    result = squad_decode.decode(*logits, windows, examples)
    assert result.answers == {"q": "w15 w16"}
    top = result.nbest["q"][:2]
    assert [(e["text"], e["start_logit"], e["end_logit"]) for e in top] == [
        ("w15 w16", 4.0, 4.0),
        ("w2 w3", 3.0, 3.0),
    ]
    assert result.null_odds is None and result.best_non_null is None


def test_start_needs_its_max_context_in_the_window_the_end_does_not(overlapping):
    windows, examples = overlapping
    # Token 10 has more context in window 1 (2 left, 9 right) than in window 0 (10 left, 1
    # right): in window 0 it may end a span but not start one.
    assert not windows.max_context[0][position(OVERLAP, QLEN, 0, 10)]
    assert windows.max_context[1][position(OVERLAP, QLEN, 1, 10)]
    logits = blank_logits(windows)
    set_span(logits, 0, 10, 11, 9.0, 9.0)  # would win (18) were start 10 allowed in window 0
    set_span(logits, 0, 6, 10, 7.0, 7.0)
    set_span(logits, 1, 10, 11, 1.0, 1.0)
    result = squad_decode.decode(*logits, windows, examples)
    nbest = {e["text"]: (e["start_logit"], e["end_logit"]) for e in result.nbest["q"]}
    assert result.answers["q"] == "w6 w7 w8 w9 w10 w11"  # start 6 (7) + end 11 (9) in window 0
    assert nbest["w6 w7 w8 w9 w10 w11"] == (7.0, 9.0)
    assert nbest["w6 w7 w8 w9 w10"] == (7.0, 7.0)
    assert nbest["w10 w11"] == (1.0, 1.0)  # scored in window 1 only
    assert all(start != 9.0 for start, _ in nbest.values())


def test_answer_length_limit_and_end_before_start():
    words = [f"w{i}" for i in range(40)]
    context, offsets = words_context(words)
    spans = [(0, 40)]
    windows = hand_windows([(offsets, spans, QLEN)])
    start, end = blank_logits(windows)
    start[0, position(spans, QLEN, 0, 0)] = 10.0
    start[0, position(spans, QLEN, 0, 1)] = 5.0
    end[0, position(spans, QLEN, 0, 30)] = 10.0
    examples = [example("q", context)]

    def answer(max_length):
        return squad_decode.decode(start, end, windows, examples, max_answer_length=max_length)

    assert answer(31).answers["q"] == " ".join(words[0:31])
    assert answer(30).answers["q"] == " ".join(words[1:31])  # 31 tokens is one too many
    one = answer(1)
    assert all(" " not in e["text"] for e in one.nbest["q"])
    assert one.answers["q"] == "w0"  # 10 + LOW; ties with w30 go to the higher-ranked start

    start[:], end[:] = LOW, LOW
    start[0, position(spans, QLEN, 0, 20)] = 12.0
    end[0, position(spans, QLEN, 0, 19)] = 12.0
    for e in answer(30).nbest["q"]:
        assert (e["start_logit"], e["end_logit"]) != (12.0, 12.0)


def test_spans_outside_the_context_are_never_chosen(overlapping):
    windows, examples = overlapping
    start, end = blank_logits(windows, extra=5)
    n = len(windows.offsets[0])
    for logits in (start, end):
        logits[:, [0, 1, 2, 3]] = 50.0  # [CLS], the question, [SEP]
        logits[0, n - 1] = 50.0  # the closing [SEP]
        logits[:, n:] = 100.0  # past the windows' ends
    set_span((start, end), 0, 2, 3, 1.0, 1.0)
    result = squad_decode.decode(start, end, windows, examples)
    assert result.answers["q"] == "w2 w3"
    assert all(e["start_logit"] < 50 and e["end_logit"] < 50 for e in result.nbest["q"]), (
        result.nbest["q"]
    )


def test_placeholder_when_no_span_is_valid(overlapping):
    windows, examples = overlapping
    start, end = blank_logits(windows)
    start[:, [1, 2]] = 5.0  # the two best starts of each window are question tokens
    v1 = squad_decode.decode(start, end, windows, examples, n_best=2)
    assert v1.answers == {"q": "empty"}
    assert v1.nbest["q"] == [
        {"text": "empty", "probability": 1.0, "start_logit": 0.0, "end_logit": 0.0}
    ]
    v2 = squad_decode.decode(start, end, windows, examples, n_best=2, version_2=True)
    assert [e["text"] for e in v2.nbest["q"]] == ["empty", ""]
    assert v2.best_non_null == {"q": "empty"}
    assert v2.null_odds == {"q": 2 * LOW}  # null (LOW + LOW) - placeholder (0 + 0)
    assert v2.answers == {"q": "empty"}


def test_v2_null_score_is_the_smallest_over_windows_and_the_threshold_decides(overlapping):
    windows, examples = overlapping
    start, end = blank_logits(windows)
    start[0, 0], end[0, 0] = 2.0, 1.0  # null 3 in window 0
    start[1, 0], end[1, 0] = 0.5, 0.5  # null 1 in window 1: the question's null score
    set_span((start, end), 1, 15, 16, 1.0, 1.0)  # best span: 2

    def decode(**kwargs):
        return squad_decode.decode(start, end, windows, examples, version_2=True, **kwargs)

    result = decode()
    assert result.null_odds == {"q": -1.0}
    assert result.answers == {"q": "w15 w16"}
    assert result.best_non_null == {"q": "w15 w16"}
    texts = [e["text"] for e in result.nbest["q"]]
    assert texts[:2] == ["w15 w16", ""]
    assert result.nbest["q"][1]["start_logit"] == 0.5 and result.nbest["q"][1]["end_logit"] == 0.5
    assert decode(null_threshold=-1.5).answers == {"q": ""}  # -1 > -1.5
    assert decode(null_threshold=-1.0).answers == {"q": "w15 w16"}  # not strictly greater
    assert result.answers_at_threshold(-1.5) == {"q": ""}
    assert result.answers_at_threshold(0.0) == {"q": "w15 w16"}

    one = decode(n_best=1)  # "" did not make the n-best: appended after it
    assert [e["text"] for e in one.nbest["q"]] == ["w15 w16", ""]

    start[1, 0] = 2.5  # window 1's null is now 3.0 too: the first window's logits are kept
    tie = decode()
    assert tie.null_odds == {"q": 1.0}
    assert tie.answers == {"q": ""}
    assert tie.nbest["q"][0] == pytest.approx(
        {"text": "", "probability": tie.nbest["q"][0]["probability"], "start_logit": 2.0,
         "end_logit": 1.0}
    )  # fmt: skip

    start[0, 0], end[0, 0] = 1.0, 1.0  # null 2 ties the best span: the span goes first
    even = decode()
    assert [e["text"] for e in even.nbest["q"][:2]] == ["w15 w16", ""]
    assert even.null_odds == {"q": 0.0} and even.answers == {"q": "w15 w16"}


def test_nbest_is_sorted_with_distinct_texts_and_softmax_probabilities():
    special = pytest.importorskip("scipy.special", reason="scipy's softmax is the reference")
    words = ["a", "b", "a", "b", "c"] * 8  # repeated texts at several places
    context, offsets = words_context(words)
    spans = [(0, 40)]
    windows = hand_windows([(offsets, spans, QLEN)])
    rng = np.random.default_rng(0)
    start = rng.normal(size=(1, 45)).astype(np.float32)
    end = rng.normal(size=(1, 45)).astype(np.float32)
    result = squad_decode.decode(start, end, windows, [example("q", context)], n_best=20)
    nbest = result.nbest["q"]
    assert len(nbest) == 20
    texts = [e["text"] for e in nbest]
    assert len(set(texts)) == 20
    scores = np.array([e["start_logit"] + e["end_logit"] for e in nbest])
    assert (np.diff(scores) <= 0).all()
    probabilities = np.array([e["probability"] for e in nbest])
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(probabilities, special.softmax(scores), rtol=1e-12)
    assert result.answers["q"] == texts[0]


def test_text_is_the_original_context_exactly():
    context = "Hello,  wörld!\tZürich  naïve"
    offsets = [(0, 5), (5, 6), (8, 13), (13, 14), (15, 21), (23, 28)]
    spans = [(0, 6)]
    windows = hand_windows([(offsets, spans, QLEN)])
    start, end = blank_logits(windows)
    start[0, position(spans, QLEN, 0, 0)] = 3.0
    end[0, position(spans, QLEN, 0, 2)] = 3.0
    start[0, position(spans, QLEN, 0, 4)] = 2.0
    end[0, position(spans, QLEN, 0, 5)] = 2.0
    result = squad_decode.decode(start, end, windows, [example("q", context)])
    texts = [e["text"] for e in result.nbest["q"]]
    assert texts[:3] == ["Hello,  wörld", "Hello,  wörld!\tZürich  naïve", "Zürich  naïve"]


def test_whitespace_of_lone_sentencepiece_pieces_is_stripped():
    # "in", a lone "▁" that keeps the two spaces it was read from, "1990", "."
    context = "in  1990."
    offsets = [(0, 2), (2, 4), (4, 8), (8, 9)]
    spans = [(0, 4)]
    windows = hand_windows([(offsets, spans, QLEN)])
    start, end = blank_logits(windows)
    start[0, position(spans, QLEN, 0, 1)] = 9.0  # the lone piece
    end[0, position(spans, QLEN, 0, 1)] = 9.0
    end[0, position(spans, QLEN, 0, 2)] = 5.0
    start[0, 0], end[0, 0] = 9.0, 8.0  # null 17: below the lone piece's 18, above " 1990"'s 14
    v1 = squad_decode.decode(start, end, windows, [example("q", context)])
    assert v1.nbest["q"][0] == pytest.approx(
        {"text": "1990", "probability": v1.nbest["q"][0]["probability"], "start_logit": 9.0,
         "end_logit": 5.0}
    )  # fmt: skip
    v2 = squad_decode.decode(start, end, windows, [example("q", context)], version_2=True)
    assert [(e["text"], e["start_logit"], e["end_logit"]) for e in v2.nbest["q"][:2]] == [
        ("", 9.0, 8.0),  # the null answer, not the lone piece's "  " (18)
        ("1990", 9.0, 5.0),
    ]
    assert v2.null_odds == {"q": 3.0}
    for result in (v1, v2):
        texts = [e["text"] for e in result.nbest["q"]]
        assert all(text == text.strip() for text in texts)
        assert texts.count("") == (result is v2)


def test_questions_are_grouped_whatever_the_window_order():
    contexts, examples = [], []
    for q in range(3):
        context, offsets = words_context([f"q{q}w{i}" for i in range(20)])
        contexts.append((offsets, OVERLAP, QLEN))
        examples.append(example(f"id{q}", context))
    windows = hand_windows(contexts)
    # Windows of different questions interleaved, each question's own in their order (which
    # breaks score ties, as run_squad's feature order does).
    order = np.array([2, 0, 4, 1, 3, 5])
    shuffled = Windows(
        input_ids=[windows.input_ids[k] for k in order],
        segment_ids=[windows.segment_ids[k] for k in order],
        offsets=[windows.offsets[k] for k in order],
        max_context=[windows.max_context[k] for k in order],
        example=windows.example[order],
        start_positions=windows.start_positions[order],
        end_positions=windows.end_positions[order],
    )
    start, end = blank_logits(windows)
    set_span((start, end), 0, 9, 11, 1.0, 1.0)  # question 0, its first window
    set_span((start, end), 3, 10, 11, 2.0, 1.0)  # question 1, its second window
    set_span((start, end), 4, 7, 8, 3.0, 1.0)  # question 2, its first window
    ours = squad_decode.decode(start[order], end[order], shuffled, examples)
    assert ours.answers == {"id0": "q0w9 q0w10 q0w11", "id1": "q1w10 q1w11", "id2": "q2w7 q2w8"}
    assert list(ours.answers) == ["id0", "id1", "id2"]
    assert ours == squad_decode.decode(start, end, windows, examples)


def test_inputs_are_checked(overlapping):
    windows, examples = overlapping
    start, end = blank_logits(windows, extra=0)
    with pytest.raises(ValueError, match="longest window has 17 tokens"):
        squad_decode.decode(start[:, :16], end[:, :16], windows, examples)
    with pytest.raises(ValueError, match="3 rows of logits"):
        squad_decode.decode(start[[0, 1, 1]], end[[0, 1, 1]], windows, examples)
    start[0, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        squad_decode.decode(start, end, windows, examples)
    with pytest.raises(ValueError, match=r"example 1 \(lonely\) has no windows"):
        squad_decode.decode(end, end, windows, [*examples, example("lonely", "x")])


def test_no_examples_no_answers():
    windows = hand_windows([])
    none = np.zeros((0, 8), np.float32)
    assert squad_decode.decode(none, none, windows, []) == squad_decode.SquadPredictions({}, {})
    v2 = squad_decode.decode(none, none, windows, [], version_2=True)
    assert v2 == squad_decode.SquadPredictions({}, {}, {}, {})


def test_prediction_files_are_what_the_official_scripts_read(tmp_path, overlapping):
    windows, examples = overlapping
    start, end = blank_logits(windows)
    set_span((start, end), 1, 15, 16, 1.0, 1.0)
    v1 = squad_decode.decode(start, end, windows, examples)
    written = squad_decode.write_prediction_files(v1, tmp_path / "v1")
    assert [p.name for p in written] == ["predictions.json", "nbest.json"]
    assert json.loads((tmp_path / "v1" / "predictions.json").read_text()) == {"q": "w15 w16"}
    nbest = json.loads((tmp_path / "v1" / "nbest.json").read_text())
    assert nbest == v1.nbest
    assert set(nbest["q"][0]) == {"text", "probability", "start_logit", "end_logit"}

    v2 = squad_decode.decode(start, end, windows, examples, version_2=True)
    squad_decode.write_prediction_files(v2, tmp_path / "v2")
    null_odds = json.loads((tmp_path / "v2" / "null_odds.json").read_text())
    assert null_odds == {"q": 2 * LOW - 2.0}


def test_gold_spans_of_real_windows_decode_to_the_gold_text(uncased_vocab):
    """Windows made by the tokenizer (several per context, answers in more than one): logits
    peaked on each window's training target decode to the gold answer, character for
    character."""

    context = (
        "The Normans (Norman: Nourmands; French: Normands) were the people who in the 10th "
        "and 11th centuries gave their name to Normandy, a région in France.  They descended "
        'from Norse ("Norman" comes from "Norseman") raiders and pirates from Denmark, '
        "Iceland and Norway who, under their leader Rollo, agreed to swear fealty to King "
        "Charles III of West Francia."
    )
    golds = ["10th and 11th centuries", "a région in France", "Rollo", "Nourmands", "Norseman"]
    examples = [
        SquadExample(
            qid=f"q{k}", title="", question=f"question {k}?", context=context,
            answers=(gold,), answer_starts=(context.index(gold),),
        )
        for k, gold in enumerate(golds)
    ]  # fmt: skip
    windows = make_windows(load_tokenizer(uncased_vocab), examples, 40, 12, 8, training=True)
    start, end = blank_logits(windows)
    inside = np.flatnonzero(windows.start_positions > 0)
    start[inside, windows.start_positions[inside]] = 10.0
    end[inside, windows.end_positions[inside]] = 10.0
    assert len(inside) > len(golds)  # some answers lie in two windows
    result = squad_decode.decode(start, end, windows, examples)
    assert result.answers == {f"q{k}": gold for k, gold in enumerate(golds)}


# --- the reference: run_squad.py's write_predictions, pair by pair ---------------------------


def reference_decode(start, end, windows, examples, version_2, n_best, max_answer_length, thr):
    """A per-pair transcription of run_squad.py `write_predictions` (texts cut by offsets; for
    v2.0 without any span, Hugging Face's "empty" first)."""
    windows_of = collections.defaultdict(list)
    for w, index in enumerate(windows.example):
        windows_of[int(index)].append(w)

    def best_indexes(logits, n):
        ranked = sorted(enumerate(logits), key=lambda x: x[1], reverse=True)
        return [i for i, _ in ranked[:n]]

    answers, all_nbest, null_odds = {}, {}, {}
    for index, ex in enumerate(examples):
        prelim = []
        score_null, null_start, null_end = 1e6, 0.0, 0.0
        for w in windows_of[index]:
            offsets, max_context = windows.offsets[w], windows.max_context[w]
            n = len(offsets)
            start_logits = [float(x) for x in start[w, :n]]
            end_logits = [float(x) for x in end[w, :n]]
            if version_2:
                feature_null = start_logits[0] + end_logits[0]
                if feature_null < score_null:
                    score_null, null_start, null_end = feature_null, start_logits[0], end_logits[0]
            for s in best_indexes(start_logits, n_best):
                for e in best_indexes(end_logits, n_best):
                    if s >= n or e >= n or offsets[s][0] < 0 or offsets[e][0] < 0:
                        continue
                    if not max_context[s] or e < s or e - s + 1 > max_answer_length:
                        continue
                    text = ex.context[offsets[s][0] : offsets[e][1]].strip()
                    if text:  # (a span of whitespace-only pieces has no text)
                        prelim.append((text, start_logits[s], end_logits[e]))
        if version_2:
            prelim.append((None, null_start, null_end))
        prelim = sorted(prelim, key=lambda p: p[1] + p[2], reverse=True)
        seen, nbest = set(), []
        for text, s, e in prelim:
            if len(nbest) >= n_best:
                break
            if text is None:
                text = ""
            elif text in seen:
                continue
            seen.add(text)
            nbest.append((text, s, e))
        if version_2 and "" not in seen:
            nbest.append(("", null_start, null_end))
        if not nbest:
            nbest.append(("empty", 0.0, 0.0))
        if version_2 and not any(text for text, _, _ in nbest):
            nbest.insert(0, ("empty", 0.0, 0.0))
        totals = [s + e for _, s, e in nbest]
        top = max(totals)
        exps = [math.exp(t - top) for t in totals]
        all_nbest[ex.qid] = [
            {"text": t, "probability": x / sum(exps), "start_logit": s, "end_logit": e}
            for (t, s, e), x in zip(nbest, exps, strict=True)
        ]
        best = next(entry for entry in nbest if entry[0])
        if version_2:
            diff = score_null - best[1] - best[2]
            null_odds[ex.qid] = diff
            answers[ex.qid] = "" if diff > thr else best[0]
        else:
            answers[ex.qid] = nbest[0][0]
    return answers, all_nbest, null_odds


def random_case(rng: np.random.Generator, num_questions: int, whole: bool):
    """Questions over contexts of a five-word vocabulary (so the same text recurs), cut into
    windows of random size and stride, with logits of random scale and padding; `whole`: the
    logits rounded to whole numbers, so that logits and scores tie everywhere."""
    contexts, examples = [], []
    for q in range(num_questions):
        length = int(rng.integers(1, 120))
        words = [["the", "cat", "sat", "on", "mat"][k] for k in rng.integers(0, 5, length)]
        gaps = [" " * int(k) for k in rng.integers(1, 3, length)]
        context, offsets = words_context(words, gaps)
        doc_tokens = int(rng.integers(4, 60))
        stride = int(rng.integers(1, doc_tokens + 1))
        spans, begin = [], 0
        while True:
            spans.append((begin, min(doc_tokens, length - begin)))
            if begin + doc_tokens >= length:
                break
            begin += stride
        contexts.append((offsets, spans, int(rng.integers(1, 8))))
        examples.append(example(f"q{q}", context))
    windows = hand_windows(contexts)
    length = max(len(o) for o in windows.offsets) + int(rng.integers(0, 10))
    scale = rng.choice([0.5, 3.0])
    start = scale * rng.normal(size=(len(windows.offsets), length))
    end = scale * rng.normal(size=(len(windows.offsets), length))
    # [CLS] logits raised by a random amount, so that the null answer wins some v2.0 questions.
    start[:, 0] += rng.uniform(0, 4 * scale, len(start))
    end[:, 0] += rng.uniform(0, 4 * scale, len(end))
    if whole:
        start, end = np.round(start), np.round(end)
    return windows, examples, start.astype(np.float32), end.astype(np.float32)


@pytest.mark.parametrize("whole", [False, True], ids=["normal", "ties"])
@pytest.mark.parametrize("version_2", [False, True], ids=["v1.1", "v2.0"])
@pytest.mark.parametrize("seed", range(6))
def test_equals_run_squad_rules_on_random_logits(seed, version_2, whole):
    rng = np.random.default_rng(seed)
    windows, examples, start, end = random_case(rng, num_questions=40, whole=whole)
    n_best = [20, 20, 5, 1, 3, 20][seed]
    max_answer_length = [30, 5, 30, 1, 10, 3][seed]
    threshold = float(rng.normal())
    ours = squad_decode.decode(
        start, end, windows, examples, version_2=version_2, n_best=n_best,
        max_answer_length=max_answer_length, null_threshold=threshold,
    )  # fmt: skip
    answers, nbest, null_odds = reference_decode(
        start, end, windows, examples, version_2, n_best, max_answer_length, threshold
    )
    assert len(windows.offsets) > 60
    assert ours.answers == answers
    assert list(ours.nbest) == list(nbest)
    for qid, entries in nbest.items():
        got = ours.nbest[qid]
        assert [(e["text"], e["start_logit"], e["end_logit"]) for e in got] == [
            (e["text"], e["start_logit"], e["end_logit"]) for e in entries
        ], qid
        np.testing.assert_allclose(
            [e["probability"] for e in got], [e["probability"] for e in entries], rtol=1e-12
        )
    if version_2:
        assert ours.null_odds == pytest.approx(null_odds, abs=1e-12)
        assert any(text == "" for text in ours.answers.values())
        assert any(text != "" for text in ours.answers.values())
    else:
        assert ours.null_odds is None
