"""SentencePiece: training with BERT's special tokens, and the shared interface on top of it.

A 2,000-piece model is trained on a slice of Gutenberg (about a second). References: the raw
`sentencepiece` processor, and Python's own string handling for the expected normalized text.
"""

from __future__ import annotations

import pytest
import sentencepiece as spm

from bert_jax.errors import UserError
from bert_jax.text.load import load_tokenizer, train_sentencepiece
from tests.text.references import write_slice

VOCAB_SIZE = 2000


@pytest.fixture(scope="module")
def slice_file(tmp_path_factory):
    return write_slice(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def model_path(slice_file, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("spm") / "uncased"
    return train_sentencepiece([slice_file], str(prefix), VOCAB_SIZE, input_sentence_size=20_000)


@pytest.fixture(scope="module")
def tok(model_path):
    return load_tokenizer(model_path)


@pytest.fixture(scope="module")
def raw(model_path):
    return spm.SentencePieceProcessor(model_file=model_path)


@pytest.fixture(scope="module")
def ascii_lines(slice_file):
    with open(slice_file, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    return [line for line in lines[::10] if line.strip() and line.isascii()]


def test_special_tokens_come_first(tok, raw, model_path):
    assert model_path.endswith("uncased.model")
    assert (tok.kind, tok.vocab_size, tok.lowercase) == ("sentencepiece", VOCAB_SIZE, True)
    specials = (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id)
    assert specials == (0, 1, 2, 3, 4)
    assert [raw.id_to_piece(i) for i in specials] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert raw.unk_id() == 1 and raw.pad_id() == 0 and raw.bos_id() == -1 and raw.eos_id() == -1


def test_special_tokens_are_never_read_from_text(tok):
    ids = tok.encode("a [MASK] b [CLS] [SEP] [PAD]")
    assert not {2, 3, 4, 0} & set(ids)


def test_encode_matches_the_raw_processor(tok, raw, ascii_lines):
    texts = ascii_lines[:300] + ["Ünïcödé ★ 中文", ""]
    assert tok.encode_batch(texts) == [raw.encode(t) for t in texts]
    assert [tok.encode(t) for t in texts] == [raw.encode(t) for t in texts]
    assert tok.tokenize(texts[0]) == [raw.id_to_piece(i) for i in raw.encode(texts[0])]


def test_lowercasing_is_in_the_model(tok):
    assert tok.encode("The Whale SAID") == tok.encode("the whale said")


def test_decode_round_trip(tok, ascii_lines):
    checked = 0
    for line in ascii_lines:
        ids = tok.encode(line)
        if tok.unk_id in ids:
            continue
        # The model lowercases and collapses whitespace; nothing else changes ASCII text.
        assert tok.decode(ids) == " ".join(line.split()).lower(), line
        assert tok.encode(tok.decode(ids)) == ids
        checked += 1
    assert checked > 100


def test_decode_of_special_tokens(tok):
    ids = tok.encode_example("the whale", "the sea").input_ids
    assert tok.decode(ids) == "the whale the sea"
    assert tok.decode(ids, skip_special_tokens=False) == "[CLS] the whale [SEP] the sea [SEP]"


def test_word_start_table_is_consistent_with_pieces(tok, raw):
    table = tok.word_start_table()
    assert table.shape == (VOCAB_SIZE,)
    for i in range(VOCAB_SIZE):
        assert table[i] == (i < 5 or raw.id_to_piece(i).startswith("\u2581")), i


def test_word_ids_count_whitespace_words(tok, ascii_lines):
    table = tok.word_start_table()
    for line in ascii_lines[:300]:
        ids, word_ids = tok.encode_with_word_ids(line)
        assert ids == tok.encode(line)
        assert word_ids[-1] + 1 == len(line.split()), line
        starts = [i == 0 or word_ids[i] != word_ids[i - 1] for i in range(len(ids))]
        if tok.unk_id not in ids:
            assert starts == [bool(table[t]) for t in ids], line


def test_pair_encoding_and_truncation(tok):
    got = tok.encode_example("the whale and the sea", "call me ishmael", max_length=8)
    assert len(got.input_ids) == 8
    assert got.input_ids[0] == tok.cls_id and got.input_ids.count(tok.sep_id) == 2
    assert got.segment_ids == [0] * got.input_ids.index(tok.sep_id) + [0] + [1] * (
        7 - got.input_ids.index(tok.sep_id)
    )
    assert got.word_ids[0] is None and got.word_ids[-1] is None


def test_training_is_deterministic_for_a_seed(slice_file, tmp_path, raw):
    path = train_sentencepiece(
        [slice_file], str(tmp_path / "again"), VOCAB_SIZE, input_sentence_size=20_000
    )
    again = spm.SentencePieceProcessor(model_file=path)
    assert [again.id_to_piece(i) for i in range(VOCAB_SIZE)] == [
        raw.id_to_piece(i) for i in range(VOCAB_SIZE)
    ]


def test_cased_model(slice_file, tmp_path, model_path):
    path = train_sentencepiece(
        [slice_file], str(tmp_path / "cased"), 1000, lowercase=False, model_type="bpe"
    )
    cased = load_tokenizer(path)
    assert cased.lowercase is False
    assert cased.encode("The") != cased.encode("the")
    with pytest.raises(UserError, match="uncased"):
        load_tokenizer(model_path, lowercase=False)
    assert load_tokenizer(model_path, lowercase=True).fingerprint != cased.fingerprint


def test_training_errors(slice_file, tmp_path):
    with pytest.raises(UserError, match="Vocabulary size too high"):
        train_sentencepiece([slice_file], str(tmp_path / "big"), 500_000)
    with pytest.raises(UserError, match="does not exist"):
        train_sentencepiece([str(tmp_path / "missing.txt")], str(tmp_path / "m"), 100)
    with pytest.raises(UserError, match="model_type"):
        train_sentencepiece([slice_file], str(tmp_path / "m"), 100, model_type="wordpiece")


def test_bad_model_files(tmp_path):
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a SentencePiece model"):
        load_tokenizer(garbage)
    plain = tmp_path / "plain"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["hello world", "the quick brown fox"] * 50),
        model_prefix=str(plain),
        vocab_size=25,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    with pytest.raises(UserError, match="lacks the special tokens"):
        load_tokenizer(str(plain) + ".model")
