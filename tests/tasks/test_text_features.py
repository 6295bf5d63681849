"""GLUE examples -> token ids: a hand-worked vocab, parity with `encode_example` and with
Hugging Face's BertTokenizer on real GLUE pairs, labels, and the speed of a whole training set."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bert_jax.errors import UserError
from bert_jax.tasks.glue_readers import Example, read_split
from bert_jax.tasks.glue_tasks import glue_task
from bert_jax.tasks.text_features import encode_pairs
from bert_jax.text.load import load_tokenizer
from tests.conftest import shared_path
from tests.text.references import slow_reference

TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n")
    return load_tokenizer(path)


@pytest.fixture(scope="module")
def uncased():
    return load_tokenizer(shared_path("vocab", "bert-base-uncased", "vocab.txt"))


@pytest.fixture(scope="module")
def real_examples() -> list[Example]:
    """A few hundred real GLUE rows: MRPC and STS-B pairs, SST-2 single sentences."""
    glue = shared_path("glue")
    mrpc, _ = read_split(glue_task("mrpc"), glue, "train")
    stsb, _ = read_split(glue_task("stsb"), glue, "dev")
    sst2, _ = read_split(glue_task("sst2"), glue, "dev")
    return mrpc[:150] + stsb[::15] + sst2[:100]


def test_hand_worked_pairs(tiny):
    examples = [
        Example(0, "the cat sat", "on the mat .", 1),  # 3 + 4 tokens
        Example(5, "the cat sat on the mat", "the cat", 0),  # 6 + 2
        Example(9, "cat", None, None),
    ]
    features = encode_pairs(tiny, examples, max_length=8, regression=False)
    cls, sep = 2, 3
    # Budget 5 = 8 - 3 specials. First: 3 + 4 -> b loses "." (longer), then ties drop from b:
    # (3, 3) -> (3, 2). Second: (6, 2) -> a loses three -> (3, 2).
    assert [ids.tolist() for ids in features.input_ids] == [
        [cls, 5, 6, 7, sep, 8, 5, sep],
        [cls, 5, 6, 7, sep, 5, 6, sep],
        [cls, 6, sep],
    ]
    assert [s.tolist() for s in features.segment_ids] == [
        [0, 0, 0, 0, 0, 1, 1, 1],
        [0, 0, 0, 0, 0, 1, 1, 1],
        [0, 0, 0],
    ]
    assert features.truncated == 2
    assert features.labels.tolist() == [1, 0, -1] and features.labels.dtype == np.int32
    assert features.indices.tolist() == [0, 5, 9]
    assert all(ids.dtype == np.int32 for ids in features.input_ids + features.segment_ids)
    assert len(features) == 3


def test_regression_labels(tiny):
    examples = [Example(0, "cat", "mat", 3.8), Example(1, "cat", "mat", None)]
    features = encode_pairs(tiny, examples, max_length=16, regression=True)
    assert features.labels.dtype == np.float32
    assert features.labels[0] == pytest.approx(3.8) and np.isnan(features.labels[1])
    assert features.truncated == 0


def test_max_length_too_small(tiny):
    with pytest.raises(UserError, match="max_length 2 is too small: .* need 3 positions"):
        encode_pairs(tiny, [Example(0, "cat", "mat", 0)], max_length=2, regression=False)
    single = encode_pairs(tiny, [Example(0, "cat sat", None, 0)], max_length=2, regression=False)
    assert single.input_ids[0].tolist() == [2, 3] and single.truncated == 1


def test_empty_list(tiny):
    features = encode_pairs(tiny, [], max_length=8, regression=False)
    assert (len(features), features.labels.shape, features.truncated) == (0, (0,), 0)


@pytest.mark.parametrize("max_length", [24, 48, 128])
def test_matches_encode_example_on_real_rows(uncased, real_examples, max_length):
    features = encode_pairs(uncased, real_examples, max_length, regression=False)
    truncated = 0
    for example, ids, segments in zip(
        real_examples, features.input_ids, features.segment_ids, strict=True
    ):
        expected = uncased.encode_example(example.text_a, example.text_b, max_length)
        assert ids.tolist() == expected.input_ids
        assert segments.tolist() == expected.segment_ids
        full = uncased.encode_example(example.text_a, example.text_b)
        truncated += len(full.input_ids) > max_length
    assert features.truncated == truncated
    if max_length == 24:
        assert truncated > 100  # the cut is exercised, not only the untouched rows


def test_matches_hugging_face_bert_tokenizer(uncased, real_examples):
    reference = slow_reference(shared_path("vocab", "bert-base-uncased", "vocab.txt"), True)
    examples = real_examples[::2]
    features = encode_pairs(uncased, examples, 40, regression=False)
    rows = zip(examples, features.input_ids, features.segment_ids, strict=True)
    for example, ids, segments in rows:
        expected = reference(
            example.text_a, example.text_b, truncation="longest_first", max_length=40
        )
        assert ids.tolist() == expected["input_ids"]
        assert segments.tolist() == expected["token_type_ids"]


@pytest.mark.slow
def test_whole_sst2_train_in_seconds(uncased):
    examples, _ = read_split(glue_task("sst2"), shared_path("glue"), "train")
    start = time.perf_counter()
    features = encode_pairs(uncased, examples, 128, regression=False)
    elapsed = time.perf_counter() - start
    assert len(features) == 67349
    assert elapsed < 30, f"encoding SST-2 train took {elapsed:.1f}s"
