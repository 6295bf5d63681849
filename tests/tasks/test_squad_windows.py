"""SQuAD windows: a hand-made context (stride, overlap, max-context flags, targets, worked out by
hand), and the full dev set: every gold answer's target span maps back to its text, every context
token is in some window, and each is marked in the one window run_squad.py's
`_check_is_max_context` picks (a transcription of it here)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bert_jax.errors import UserError
from bert_jax.tasks.squad_data import SquadExample, read_squad
from bert_jax.tasks.squad_scoring import normalize_answer
from bert_jax.tasks.squad_windows import make_windows
from bert_jax.text.load import load_tokenizer
from tests.conftest import shared_path

NUMBERS = " ".join(str(i) for i in range(20))  # one token per number in BERT's vocabs


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(shared_path("vocab", "bert-base-uncased", "vocab.txt"))


def example(qid: str, context: str, answer: str | None, question: str = "q?") -> SquadExample:
    if answer is None:
        return SquadExample(qid, "", question, context, (), (), is_impossible=True)
    return SquadExample(qid, "", question, context, (answer,), (context.index(answer),))


def window_text(windows, w: int, start: int, end: int, context: str) -> str:
    offsets = windows.offsets[w]
    return context[offsets[start][0] : offsets[end][1]]


def test_stride_overlap_and_max_context_by_hand(tokenizer):
    # Question "q ?" is 2 tokens: 13 = [CLS] + 2 + [SEP] + 8 context tokens + [SEP].
    windows = make_windows(tokenizer, [example("a", NUMBERS, "7 8 9")], 13, 3, 2, training=True)
    assert len(windows) == 5 and list(windows.example) == [0] * 5
    # Windows start 3 tokens apart, 8 tokens each, the last one ending at token 19.
    pieces = [[NUMBERS[s:e] for s, e in offsets[4:-1]] for offsets in windows.offsets]
    assert pieces == [[str(i) for i in range(start, start + 8)] for start in (0, 3, 6, 9, 12)]
    q, sep, cls = tokenizer.encode("q?"), tokenizer.sep_id, tokenizer.cls_id
    assert list(windows.input_ids[1]) == [cls, *q, sep, *tokenizer.encode(NUMBERS)[3:11], sep]
    assert list(windows.segment_ids[1]) == [0] * 4 + [1] * 9
    assert all((o[:4] == -1).all() and (o[-1] == -1).all() for o in windows.offsets)
    # Each token's best window: min(left, right) context, the first on ties (tokens 5, 8, ...).
    best = [0] * 6 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 5
    for w, flags in enumerate(windows.max_context):
        assert not flags[:4].any() and not flags[-1]
        expected = [best[t] == w for t in range(3 * w, 3 * w + 8)]
        assert list(flags[4:-1]) == expected, w
    # "7 8 9" is tokens 7..9: whole in windows 1 and 2 only.
    assert list(windows.start_positions) == [0, 8, 5, 0, 0]
    assert list(windows.end_positions) == [0, 10, 7, 0, 0]
    assert window_text(windows, 1, 8, 10, NUMBERS) == window_text(windows, 2, 5, 7, NUMBERS)
    assert window_text(windows, 2, 5, 7, NUMBERS) == "7 8 9"


def test_question_cut_targets_and_edge_cases(tokenizer):
    examples = [
        example("long question", NUMBERS, "19", question="one two three four five six"),
        example("impossible", NUMBERS, None),
        example("empty context", "", None),
        example("inside a word", "Unbelievable results", "believ"),
    ]
    windows = make_windows(tokenizer, examples, 16, 4, max_query_length=3, training=True)
    first = [int(np.argmax(windows.example == i)) for i in range(len(examples))]
    # The question is cut to 3 tokens: 16 - 3 - 3 = 10 context tokens a window, starting at
    # tokens 0, 4, 8, 12; "q ?" leaves 11: 0, 4, 8, 12 again.
    assert list(windows.input_ids[0][:5]) == [
        tokenizer.cls_id,
        *tokenizer.encode("one two three"),
        tokenizer.sep_id,
    ]
    assert [len(np.flatnonzero(windows.example == i)) for i in range(4)] == [4, 4, 1, 1]
    last = first[1] - 1  # the last window of the first example holds "19"
    assert (
        window_text(
            windows, last, windows.start_positions[last], windows.end_positions[last], NUMBERS
        )
        == "19"
    )
    assert not windows.start_positions[first[1] : first[2]].any()  # impossible: [CLS]
    assert list(windows.input_ids[first[2]]) == [
        tokenizer.cls_id,
        *tokenizer.encode("q?"),
        tokenizer.sep_id,
        tokenizer.sep_id,
    ]
    # An answer inside a token maps to the whole token.
    w = first[3]
    text = window_text(
        windows, w, windows.start_positions[w], windows.end_positions[w], examples[3].context
    )
    assert "believ" in text and text in examples[3].context
    assert not make_windows(tokenizer, examples, 16, 4, 3, training=False).start_positions.any()
    with pytest.raises(UserError, match=r"max_length 66 leaves no room .*needs at least 68\)"):
        make_windows(tokenizer, examples, 66, 4, 64, training=True)


def best_window(spans: list[tuple[int, int]], token: int) -> int:
    """run_squad.py's `_check_is_max_context`, for every span at once."""
    best, best_score = None, None
    for k, (start, length) in enumerate(spans):
        end = start + length - 1
        if not start <= token <= end:
            continue
        score = min(token - start, end - token) + 0.01 * length
        if best_score is None or score > best_score:
            best, best_score = k, score
    return best


def where(piece: np.ndarray, piece_ids: np.ndarray, ids: list[int], offsets: list) -> int:
    """The context token a window's piece starts at (matching its ids and offsets)."""
    for s in range(len(ids) - len(piece) + 1):
        if (
            tuple(offsets[s]) == tuple(piece[0])
            and list(piece_ids) == ids[s : s + len(piece)]
            and piece.tolist() == [list(o) for o in offsets[s : s + len(piece)]]
        ):
            return s
    raise AssertionError("a window's piece is not a slice of its context")


def test_full_dev_set_round_trip(tokenizer):
    examples, skipped = read_squad(shared_path("squad", "dev-v1.1.json"), training=True)
    assert skipped == [] and len(examples) == 10570
    start = time.perf_counter()
    windows = make_windows(tokenizer, examples, 384, 128, 64, training=True)
    seconds = time.perf_counter() - start
    print(f"{len(examples)} questions -> {len(windows)} windows in {seconds:.1f} s")
    assert seconds < 30

    contexts = list(dict.fromkeys(e.context for e in examples))
    tokens = dict(zip(contexts, tokenizer.encode_batch_with_offsets(contexts), strict=True))
    by_example = np.split(np.arange(len(windows)), np.flatnonzero(np.diff(windows.example)) + 1)
    assert [int(windows.example[w[0]]) for w in by_example] == list(range(len(examples)))
    failures = []
    for index, (e, rows) in enumerate(zip(examples, by_example, strict=True)):
        ids, offsets = tokens[e.context]
        question = tokenizer.encode(e.question)[:64]
        head = len(question) + 2
        spans = []
        for w in rows:
            assert len(windows.input_ids[w]) <= 384
            assert list(windows.input_ids[w][:head]) == [
                tokenizer.cls_id,
                *question,
                tokenizer.sep_id,
            ]
            piece = windows.offsets[w][head:-1]
            spans.append((where(piece, windows.input_ids[w][head:-1], ids, offsets), len(piece)))
        # No truncation: windows 128 tokens apart, full but the last, which ends the context.
        assert [s for s, _ in spans] == [128 * k for k in range(len(spans))]
        assert spans[-1][0] + spans[-1][1] == len(ids)
        assert all(n == 384 - head - 1 for _, n in spans[:-1])
        if len(spans) > 1:
            for k, w in enumerate(rows):
                s, n = spans[k]
                flags = windows.max_context[w][head:-1]
                assert list(flags) == [best_window(spans, t) == k for t in range(s, s + n)]
        else:
            assert windows.max_context[rows[0]][head:-1].all()
        # The first gold answer, read back from the original context.
        targets = [(w, windows.start_positions[w], windows.end_positions[w]) for w in rows]
        texts = [window_text(windows, w, s, t, e.context) for w, s, t in targets if s > 0]
        if not texts or any(normalize_answer(t) != normalize_answer(e.answers[0]) for t in texts):
            failures.append((index, e.qid, e.answers[0], texts))
    for failure in failures:
        print("round trip failure:", failure)
    print(f"{len(failures)} of {len(examples)} answers do not round trip")
    assert len(failures) < 0.005 * len(examples)
