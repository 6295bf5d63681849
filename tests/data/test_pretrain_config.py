"""PretrainDataConfig validation and SpecialTokens from a real tokenizer."""

import numpy as np
import pytest

from bert_jax.data.pretrain_config import PretrainDataConfig, SpecialTokens
from bert_jax.errors import UserError


def test_defaults_are_the_original_bert_settings():
    config = PretrainDataConfig("dir").validate()
    assert (config.max_seq_length, config.max_predictions_per_seq) == (128, 20)
    assert (config.masked_lm_prob, config.mask_token_prob, config.random_token_prob) == (
        0.15,
        0.8,
        0.1,
    )
    assert (config.short_seq_prob, config.mode, config.whole_word_masking) == (0.1, "nsp", False)


@pytest.mark.parametrize(
    "fields,message",
    [
        (dict(max_predictions_per_seq=126), r"max_predictions_per_seq 126 must be in \[1, 125\]"),
        (dict(max_predictions_per_seq=0), "max_predictions_per_seq 0"),
        (dict(max_seq_length=4), "max_seq_length 4 is too short"),
        (dict(masked_lm_prob=0.0), "masked_lm_prob 0.0"),
        (dict(mask_token_prob=0.95, random_token_prob=0.1), "exceeds 1"),
        (dict(short_seq_prob=1.5), "short_seq_prob 1.5"),
        (dict(mode="mlm"), "mode 'mlm'"),
        (dict(shuffle_buffer=0), "shuffle_buffer 0"),
    ],
)
def test_bad_fields_raise_user_error(fields, message):
    with pytest.raises(UserError, match=message):
        PretrainDataConfig("dir", **fields).validate()


def test_special_tokens_from_the_bert_vocab(uncased_vocab):
    from bert_jax.text.load import load_tokenizer

    tokenizer = load_tokenizer(uncased_vocab)
    tokens = SpecialTokens.from_tokenizer(tokenizer)
    assert (tokens.vocab_size, tokens.pad_id, tokens.cls_id, tokens.sep_id, tokens.mask_id) == (
        30522,
        0,
        101,
        102,
        103,
    )
    vocab = uncased_vocab.read_text(encoding="utf-8").splitlines()
    continuation = np.array([piece.startswith("##") for piece in vocab])
    np.testing.assert_array_equal(tokens.word_start, ~continuation)


def test_special_tokens_are_checked():
    with pytest.raises(UserError, match="mask_id 40"):
        SpecialTokens(vocab_size=40, cls_id=1, sep_id=2, pad_id=0, mask_id=40)
    with pytest.raises(UserError, match="word-start table"):
        SpecialTokens(40, 1, 2, 0, 3, word_start=np.ones(39, bool))
