"""Entity metrics against `seqeval` (default mode: conlleval's chunk rules) on random tag
sequences in IOB1 and IOB2, and hand-worked conlleval cases."""

from __future__ import annotations

import random

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

from bert_jax.errors import UserError
from bert_jax.tasks import ner_metrics
from tests.conftest import shared_path

TYPES = ("PER", "LOC", "ORG", "MISC")


def random_tags(rng: random.Random, sentences: int, scheme: str) -> list[list[str]]:
    """Random tags; iob2 draws chunk by chunk (B- then I-), iob1 and mixed draw token by token
    (any I- or B- anywhere, so chunks start with I-, change type, follow each other)."""
    out = []
    for _ in range(sentences):
        n = rng.randint(0, 14)
        if scheme == "iob2":
            tags = []
            while len(tags) < n:
                if rng.random() < 0.5:
                    tags.append("O")
                    continue
                kind = rng.choice(TYPES)
                tags += [f"B-{kind}"] + [f"I-{kind}"] * rng.randint(0, 3)
            out.append(tags[:n])
        else:
            begin = 0.1 if scheme == "iob1" else 0.4
            out.append(
                [
                    "O"
                    if rng.random() < 0.4
                    else f"{'B' if rng.random() < begin else 'I'}-{rng.choice(TYPES)}"
                    for _ in range(n)
                ]
            )
    return out


def corrupt(rng: random.Random, gold: list[list[str]], rate: float) -> list[list[str]]:
    """A prediction: each tag kept, or replaced by O or a random B-/I- tag."""
    pool = ["O"] + [f"{p}-{t}" for p in "BI" for t in TYPES]
    return [[t if rng.random() > rate else rng.choice(pool) for t in s] for s in gold]


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "mixed"])
@pytest.mark.parametrize("seed", range(5))
def test_equals_seqeval_on_random_tags(scheme, seed):
    rng = random.Random(seed)
    gold = random_tags(rng, 300, scheme)
    for rate in (0.05, 0.3, 0.9):
        predicted = corrupt(rng, gold, rate)
        if scheme == "iob2":  # an IOB2 system predicts IOB2: rewrite the prediction's chunks
            predicted = ner_metrics.to_scheme(predicted, "iob2")
        ours = ner_metrics.score(gold, predicted)
        assert ours["precision"] == pytest.approx(precision_score(gold, predicted), abs=1e-12)
        assert ours["recall"] == pytest.approx(recall_score(gold, predicted), abs=1e-12)
        assert ours["f1"] == pytest.approx(f1_score(gold, predicted), abs=1e-12)
        report = classification_report(gold, predicted, output_dict=True, zero_division=0)
        for kind in TYPES:
            if kind in report:
                assert ours[f"{kind}/precision"] == pytest.approx(report[kind]["precision"])
                assert ours[f"{kind}/recall"] == pytest.approx(report[kind]["recall"])
                assert ours[f"{kind}/f1"] == pytest.approx(report[kind]["f1-score"])
        # The chunks themselves: seqeval numbers tokens over the sentences joined by one O.
        spans, offset = [], []
        at = 0
        for tags in gold:
            offset.append(at)
            at += len(tags) + 1
        for s, start, end, kind in ner_metrics.entities(gold):
            spans.append((kind, offset[s] + start, offset[s] + end - 1))
        joined = [t for tags in gold for t in [*tags, "O"]]
        assert spans == get_entities(joined)


def test_scheme_conversion_keeps_the_chunks():
    rng = random.Random(7)
    tags = random_tags(rng, 200, "mixed")
    iob1 = ner_metrics.to_scheme(tags, "iob1")
    iob2 = ner_metrics.to_scheme(tags, "iob2")
    assert ner_metrics.entities(iob1) == ner_metrics.entities(tags) == ner_metrics.entities(iob2)
    assert ner_metrics.to_scheme(iob2, "iob1") == iob1
    assert ner_metrics.to_scheme(iob1, "iob2") == iob2
    assert all(
        t.startswith("B-") for s, a, _, _ in ner_metrics.entities(iob2) for t in [iob2[s][a]]
    )
    # IOB1 writes B- only where a chunk directly follows one of its type.
    assert ner_metrics.to_scheme([["B-PER", "B-PER", "B-LOC", "I-LOC", "O", "B-LOC"]], "iob1") == [
        ["I-PER", "B-PER", "I-LOC", "I-LOC", "O", "I-LOC"]
    ]
    with pytest.raises(UserError, match="scheme 'bio' is not one of iob1, iob2"):
        ner_metrics.to_scheme(tags, "bio")


# --- hand-worked conlleval cases --------------------------------------------------------------


def test_chunk_starting_with_i_and_type_changes():
    tags = [["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "I-ORG", "B-ORG", "B-ORG", "I-ORG"]]
    # I- after O or at a sentence start opens a chunk; a type change opens a new one; B- opens
    # one even after a chunk of its type (adjacent B- chunks are two chunks).
    assert ner_metrics.entities(tags) == [
        (0, 0, 2, "PER"),
        (0, 3, 4, "LOC"),
        (0, 4, 6, "ORG"),
        (0, 6, 7, "ORG"),
        (0, 7, 9, "ORG"),
    ]
    # Sentences never share a chunk; B- after I- of another type; empty sentences are fine.
    assert ner_metrics.entities([["I-PER"], [], ["I-PER", "B-LOC"]]) == [
        (0, 0, 1, "PER"),
        (2, 0, 1, "PER"),
        (2, 1, 2, "LOC"),
    ]


def test_hand_worked_scores():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["I-ORG", "I-ORG", "O"]]
    # PER: predicted one token short (wrong); LOC right; ORG split by a type change: the gold ORG
    # chunk (0-1) is missed, and the prediction has chunks ORG (0) and MISC (1).
    predicted = [["B-PER", "O", "O", "I-LOC"], ["I-ORG", "I-MISC", "O"]]
    result = ner_metrics.score(gold, predicted)
    # gold chunks 3 (PER, LOC, ORG); predicted 4 (PER, LOC, ORG, MISC); correct 1 (LOC).
    assert result["precision"] == pytest.approx(1 / 4)
    assert result["recall"] == pytest.approx(1 / 3)
    assert result["f1"] == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    assert result["accuracy"] == pytest.approx(4 / 7)  # tags equal as strings (B-LOC != I-LOC)
    assert result["LOC/f1"] == 1.0
    assert (result["PER/precision"], result["PER/recall"]) == (0.0, 0.0)
    assert (result["MISC/precision"], result["MISC/recall"], result["MISC/f1"]) == (0.0, 0.0, 0.0)
    # IOB1 and IOB2 spellings of the same chunks score the same (B-LOC vs I-LOC above).
    assert ner_metrics.score(gold, gold)["f1"] == 1.0
    assert ner_metrics.score(gold, ner_metrics.to_scheme(gold, "iob1"))["f1"] == 1.0
    # Adjacent chunks of one type: the boundary matters.
    assert ner_metrics.score([["B-PER", "B-PER"]], [["B-PER", "I-PER"]])["f1"] == 0.0
    assert ner_metrics.score([["I-PER", "B-PER"]], [["B-PER", "B-PER"]])["f1"] == 1.0


def test_nothing_found_and_bad_input():
    assert ner_metrics.score([["B-PER"]], [["O"]])["f1"] == 0.0
    assert ner_metrics.score([["O"]], [["O"]])["precision"] == 0.0
    assert ner_metrics.score([], [])["f1"] == 0.0
    with pytest.raises(UserError, match="sentence 1: 1 predicted tags for 2 words"):
        ner_metrics.score([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(UserError, match="2 predicted sentences for 1 gold"):
        ner_metrics.score([["O"]], [["O"], ["O"]])
    with pytest.raises(UserError, match="tag 'PER' is not O, B-TYPE or I-TYPE"):
        ner_metrics.score([["PER"]], [["O"]])
    with pytest.raises(UserError, match="tag 'E-PER'"):
        ner_metrics.score([["O"]], [["E-PER"]])


def test_full_testb_in_well_under_a_second():
    import time

    from bert_jax.tasks import conll

    gold = [list(s.tags) for s in conll.read_file(shared_path("conll2003", "eng.testb"))]
    predicted = corrupt(random.Random(0), gold, 0.1)
    began = time.perf_counter()
    result = ner_metrics.score(gold, predicted)
    elapsed = time.perf_counter() - began
    assert result["f1"] == pytest.approx(f1_score(gold, predicted), abs=1e-12)
    assert elapsed < 0.5, f"scoring eng.testb took {elapsed:.2f} s"
