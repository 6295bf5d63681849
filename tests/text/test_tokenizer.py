"""The shared tokenizer interface on WordPiece: loading, pairs, truncation, word ids, decoding.

References are Hugging Face's tokenizers (slow for ids and text, fast for `word_ids()`) and the
vocab file itself; SentencePiece has its own module (test_sentencepiece_tokenizer.py).
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from bert_jax.errors import UserError
from bert_jax.text.load import load_tokenizer
from bert_jax.text.tokenizer import Encoded, Tokenizer, truncated_lengths
from tests.conftest import shared_path
from tests.text.references import gutenberg_lines, slow_reference


@pytest.fixture(scope="module")
def uncased():
    return load_tokenizer(shared_path("vocab", "bert-base-uncased", "vocab.txt"))


@pytest.fixture(scope="module")
def sample_lines():
    return [line for line in gutenberg_lines()[::60] if line.strip()]


def test_seed_example(uncased):
    assert uncased.tokenize("I love BERT model") == ["i", "love", "bert", "model"]
    assert uncased.encode("I love BERT model") == [1045, 2293, 14324, 2944]


def test_vocab_attributes(uncased, uncased_vocab, cased_vocab):
    assert isinstance(uncased, Tokenizer)
    assert (uncased.kind, uncased.vocab_size, uncased.lowercase) == ("wordpiece", 30522, True)
    specials = (uncased.pad_id, uncased.unk_id, uncased.cls_id, uncased.sep_id, uncased.mask_id)
    assert specials == (0, 100, 101, 102, 103)
    assert [uncased.id_to_token(i) for i in specials] == [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
    ]
    data = uncased_vocab.read_bytes()
    assert uncased.fingerprint == hashlib.sha256(data + b"\0lowercase=1").hexdigest()
    cased = load_tokenizer(cased_vocab, lowercase=False)
    assert (cased.vocab_size, cased.lowercase) == (28996, False)
    # Unless told, a vocab with capitalised pieces is read cased.
    assert load_tokenizer(cased_vocab).fingerprint == cased.fingerprint
    assert load_tokenizer(cased_vocab, lowercase=True).lowercase is True
    # Same file read cased is another tokenizer.
    assert load_tokenizer(uncased_vocab, lowercase=False).fingerprint != uncased.fingerprint
    assert load_tokenizer(uncased_vocab.parent).fingerprint == uncased.fingerprint


def test_single_and_pair_match_hugging_face(uncased, uncased_vocab):
    reference = slow_reference(uncased_vocab, lowercase=True)
    a, b = "The quick brown fox, unaffable.", "Jumps over the lazy dog!"
    single = uncased.encode_example(a)
    assert single.input_ids == reference(a)["input_ids"]
    assert single.segment_ids == [0] * len(single.input_ids)
    pair = uncased.encode_example(a, b)
    expected = reference(a, b)
    assert pair.input_ids == expected["input_ids"]
    assert pair.segment_ids == expected["token_type_ids"]
    assert pair.input_ids[0] == 101 and pair.input_ids.count(102) == 2


@pytest.mark.parametrize("max_length", [3, 4, 5, 8, 11, 14, 40])
def test_pair_truncation_matches_hugging_face_longest_first(uncased, uncased_vocab, max_length):
    reference = slow_reference(uncased_vocab, lowercase=True)
    a = "one two three four five six seven eight nine ten"
    b = "alpha beta gamma delta epsilon"
    got = uncased.encode_example(a, b, max_length=max_length)
    expected = reference(a, b, truncation="longest_first", max_length=max_length)
    assert got.input_ids == expected["input_ids"]
    assert got.segment_ids == expected["token_type_ids"]
    assert len(got.word_ids) == len(got.input_ids) <= max_length


def test_truncation_drops_from_the_longer_text_and_from_b_on_ties():
    # BERT's truncate_seq_pair, worked by hand.
    assert truncated_lengths(7, 4, 5) == (3, 2)
    assert truncated_lengths(4, 4, 7) == (4, 3)
    assert truncated_lengths(2, 9, 6) == (2, 4)
    assert truncated_lengths(3, 2, 10) == (3, 2)
    assert truncated_lengths(5, 5, 0) == (0, 0)


def test_single_truncation_and_too_small_max_length(uncased):
    got = uncased.encode_example("a b c d e f", max_length=4)
    assert got.input_ids == [101, 1037, 1038, 102]
    with pytest.raises(UserError, match="max_length 2"):
        uncased.encode_example("a", "b", max_length=2)


def test_word_ids_match_hugging_face_fast_word_ids(uncased, uncased_vocab, sample_lines):
    transformers = pytest.importorskip("transformers", reason="reference for word_ids()")

    fast = transformers.BertTokenizerFast(str(uncased_vocab), do_lower_case=True)
    for a, b in zip(sample_lines[0::2], sample_lines[1::2], strict=False):
        got = uncased.encode_example(a, b)
        expected = fast(a, b)
        assert got.input_ids == expected["input_ids"], (a, b)
        assert got.word_ids == expected.word_ids(), (a, b)


def test_word_ids_follow_the_word_start_table(uncased, sample_lines):
    table = uncased.word_start_table()
    for line in sample_lines:
        ids, words = uncased.encode_with_word_ids(line)
        starts = [i == 0 or words[i] != words[i - 1] for i in range(len(ids))]
        assert starts == [bool(table[t]) for t in ids], line


def test_word_start_table_marks_pieces_without_the_continuation_prefix(uncased, uncased_vocab):
    tokens = uncased_vocab.read_text(encoding="utf-8").splitlines()
    table = uncased.word_start_table()
    assert table.dtype == np.bool_ and table.shape == (len(tokens),)
    expected = np.array([not t.startswith("##") for t in tokens])
    assert (table == expected).all()  # the special tokens do not start with "##" either
    assert table[[0, 100, 101, 102, 103]].all()
    assert 5000 < (~table).sum() < 6000  # the uncased vocab has 5,828 "##" pieces


def test_encode_words_indexes_the_given_words(uncased):
    ids, word_ids = uncased.encode_words(["Hello,", "unaffable", "world"])
    assert ids == uncased.encode("Hello,") + uncased.encode("unaffable") + uncased.encode("world")
    assert word_ids == [0, 0, 1, 1, 1, 2]


def test_encode_batch_equals_encode(uncased, sample_lines):
    texts = sample_lines[:200] + ["ΟΔΟΣ", "e\u0301", "", "[MASK] x", "\U0001fae8"]
    assert uncased.encode_batch(texts) == [uncased.encode(t) for t in texts]


def test_decode_matches_hugging_face_and_reencodes_to_the_same_ids(
    uncased, uncased_vocab, sample_lines
):
    reference = slow_reference(uncased_vocab, lowercase=True)
    for line in sample_lines + ["Hello, world! I don't know [MASK]. Isn't it 'quoted' ?"]:
        ids = uncased.encode_example(line).input_ids
        assert uncased.decode(ids) == reference.decode(ids, skip_special_tokens=True), line
        assert uncased.decode(ids, skip_special_tokens=False) == reference.decode(ids), line
        # Special tokens in text are read back as special tokens.
        assert uncased.encode(uncased.decode(ids, skip_special_tokens=False)) == ids, line


def test_decode_rejects_ids_outside_the_vocab(uncased):
    with pytest.raises(UserError, match="30522"):
        uncased.decode([1045, 30522])


def test_encoded_is_frozen():
    encoded = Encoded(input_ids=[101, 102], segment_ids=[0, 0], word_ids=[None, None])
    with pytest.raises(AttributeError):
        encoded.input_ids = []


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"\n \n", "empty"),
        (b"\x00\x01\x02[CLS]\n", "binary"),
        (b"\xff\xfe[\x00C\x00", "binary"),
        (b"[PAD]\n[UNK]\n\xe9t\xe9\n", "not UTF-8"),
        (b"hello\nworld\n", "lacks the special tokens [PAD] [UNK] [CLS] [SEP] [MASK]"),
        (
            b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\na\n",
            "repeats the token 'a' on lines 6 and 8",
        ),
    ],
)
def test_bad_vocab_files_raise_user_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "vocab.txt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=re.escape(message)) as error:
        load_tokenizer(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_paths_raise_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_tokenizer(tmp_path / "nope" / "vocab.txt")
    with pytest.raises(UserError, match="has no vocab.txt"):
        load_tokenizer(tmp_path)


def test_minimal_vocab_with_crlf_line_ends(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_bytes(b"[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhello\r\n##s\r\n,\r\n")
    tok = load_tokenizer(path)
    assert tok.vocab_size == 8
    assert tok.encode("Hellos, you") == [5, 6, 7, 1]
