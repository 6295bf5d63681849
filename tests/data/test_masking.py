"""Dynamic masking against the original algorithm's rules: exact prediction counts, binomial bounds
on the 80/10/10 split, uniform random tokens, whole-word groups, determinism by seed."""

import math
import random

import numpy as np
import pytest
import tensorflow as tf

from bert_jax.data.masking import make_masker
from bert_jax.data.pretrain_config import PretrainDataConfig, SpecialTokens

PAD, CLS, SEP, MASK = 0, 101, 102, 103
SEQ = 128


def tokens(vocab_size=1000, word_start=None):
    return SpecialTokens(
        vocab_size, cls_id=CLS, sep_id=SEP, pad_id=PAD, mask_id=MASK, word_start=word_start
    )


def pairs(n, vocab_size=1000, seed=0):
    """[CLS] A [SEP] B [SEP] [PAD]... of random lengths (4..128 real tokens), ids >= 110."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(110, vocab_size, size=(n, SEQ)).astype(np.int32)
    lengths = rng.integers(4, SEQ + 1, size=n)
    split = 1 + (rng.random(n) * (lengths - 3)).astype(int)  # position of the first [SEP]
    position = np.arange(SEQ)
    ids[:, 0] = CLS
    ids[position == split[:, None]] = SEP
    ids[position == (lengths - 1)[:, None]] = SEP
    ids[position >= lengths[:, None]] = PAD
    mask = (position < lengths[:, None]).astype(np.int32)
    return ids, mask


def run(ids, input_mask, config, toks, step=0, batch=2048):
    """Mask in batches, eagerly; numpy outputs concatenated."""
    masker = make_masker(config, toks)
    out = []
    for start in range(0, len(ids), batch):
        piece = {
            "input_ids": tf.constant(ids[start : start + batch]),
            "input_mask": tf.constant(input_mask[start : start + batch]),
        }
        seed = tf.constant([config.seed, step * 1000 + start], tf.int64)
        out.append({k: v.numpy() for k, v in masker(piece, seed).items()})
    return {k: np.concatenate([o[k] for o in out]) for k in out[0]}


def expected_predictions(ids, input_mask, rate, cap):
    """The original: min(cap, max(1, round(len * rate))) with [CLS]/[SEP] in len, at most the
    number of maskable tokens."""
    lengths = input_mask.sum(1)
    maskable = ((input_mask == 1) & (ids != CLS) & (ids != SEP) & (ids != PAD)).sum(1)
    wanted = [min(cap, max(1, int(round(n * rate)))) for n in lengths]
    return np.minimum(wanted, maskable)


def within(count, trials, p, sigmas=5.0):
    mean, sd = trials * p, math.sqrt(trials * p * (1 - p))
    return abs(
        count - mean
    ) <= sigmas * sd + 1, f"{count} of {trials}, expected {mean:.0f}+-{sd:.0f}"


@pytest.mark.parametrize(
    "rate,mask_prob,random_prob",
    [(0.15, 0.8, 0.1), (0.3, 0.5, 0.3)],  # the original; MosaicBERT-style rate, other split
)
def test_counts_split_and_invariants(rate, mask_prob, random_prob):
    vocab = 1000
    ids, input_mask = pairs(12_000, vocab)
    config = PretrainDataConfig(
        "unused",
        masked_lm_prob=rate,
        mask_token_prob=mask_prob,
        random_token_prob=random_prob,
        max_predictions_per_seq=40,
    )
    out = run(ids, input_mask, config, tokens(vocab))
    positions, weights, mlm_ids = out["mlm_positions"], out["mlm_weights"], out["mlm_ids"]
    assert positions.shape == (len(ids), 40) and weights.dtype == np.float32

    # Exactly the original's number of predictions per sequence.
    np.testing.assert_array_equal(weights.sum(1), expected_predictions(ids, input_mask, rate, 40))
    real = weights == 1
    # Used slots first, positions strictly ascending; unused slots are (0, 0, 0).
    assert np.all(np.diff(real.astype(int), axis=1) <= 0)
    assert np.all(np.where(real[:, 1:], np.diff(positions, axis=1) > 0, True))
    assert np.all(positions[~real] == 0) and np.all(mlm_ids[~real] == 0)
    # mlm_ids are the original tokens; never a special token or padding.
    rows = np.nonzero(real)[0]
    original = ids[rows, positions[real]]
    np.testing.assert_array_equal(mlm_ids[real], original)
    assert not np.isin(original, [CLS, SEP, PAD]).any()
    assert np.all(input_mask[rows, positions[real]] == 1)
    # Only chosen positions change.
    chosen = np.zeros_like(ids, dtype=bool)
    chosen[rows, positions[real]] = True
    np.testing.assert_array_equal(out["input_ids"][~chosen], ids[~chosen])

    # The split: [MASK] / random token (uniform over the vocab, so it can equal the original or
    # be [MASK]) / unchanged.
    new = out["input_ids"][rows, positions[real]]
    n = len(new)
    p_mask = mask_prob + random_prob / vocab
    p_same = (1 - mask_prob - random_prob) + random_prob / vocab
    for count, p in [((new == MASK).sum(), p_mask), ((new == original).sum(), p_same)]:
        ok, message = within(count, n, p)
        assert ok, message


def test_random_tokens_are_uniform_over_the_whole_vocab():
    vocab = 500
    ids, input_mask = pairs(20_000, vocab, seed=1)
    config = PretrainDataConfig(
        "unused",
        masked_lm_prob=0.3,
        mask_token_prob=0.0,
        random_token_prob=1.0,
        max_predictions_per_seq=40,
    )
    out = run(ids, input_mask, config, tokens(vocab))
    real = out["mlm_weights"] == 1
    rows = np.nonzero(real)[0]
    drawn = out["input_ids"][rows, out["mlm_positions"][real]]
    counts = np.bincount(drawn, minlength=vocab)
    expected = len(drawn) / vocab
    chi2 = ((counts - expected) ** 2 / expected).sum()
    dof = vocab - 1
    assert abs(chi2 - dof) < 5 * math.sqrt(2 * dof), chi2
    assert counts[:110].sum() > 0  # ids below the data's range (special tokens) are drawn too


def test_choice_is_uniform_over_maskable_positions():
    # Fixed-length rows: every maskable position must be chosen at the same rate.
    n = 20_000
    ids = np.random.default_rng(2).integers(110, 1000, size=(n, SEQ)).astype(np.int32)
    ids[:, 0], ids[:, 64], ids[:, -1] = CLS, SEP, SEP
    config = PretrainDataConfig("unused")
    out = run(ids, np.ones_like(ids), config, tokens())
    real = out["mlm_weights"] == 1
    hits = np.bincount(out["mlm_positions"][real], minlength=SEQ)
    assert hits[0] == hits[64] == hits[127] == 0
    p = 19 / 125  # round(128 * 0.15) = 19 predictions over 125 maskable tokens
    for position in (1, 2, 63, 65, 100, 126):
        ok, message = within(hits[position], n, p)
        assert ok, f"position {position}: {message}"


def test_cap_applies():
    ids, input_mask = pairs(2000, seed=3)
    config = PretrainDataConfig("unused", masked_lm_prob=0.9, max_predictions_per_seq=5)
    out = run(ids, input_mask, config, tokens())
    assert out["mlm_weights"].sum(1).max() == 5
    np.testing.assert_array_equal(
        out["mlm_weights"].sum(1), expected_predictions(ids, input_mask, 0.9, 5)
    )


def test_same_seed_same_masks_other_step_other_masks():
    ids, input_mask = pairs(512, seed=4)
    config = PretrainDataConfig("unused")
    first = run(ids, input_mask, config, tokens(), step=0)
    again = run(ids, input_mask, config, tokens(), step=0)
    later = run(ids, input_mask, config, tokens(), step=1)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    differs = (first["mlm_positions"] != later["mlm_positions"]).any(1)
    assert differs.mean() > 0.95


def reference_whole_word_count(lengths, num_to_predict, rng):
    """The original's whole-word loop: words in random order, skip one that would overflow."""
    words = list(lengths)
    rng.shuffle(words)
    chosen = 0
    for size in words:
        if chosen >= num_to_predict:
            break
        if chosen + size > num_to_predict:
            continue
        chosen += size
    return chosen


def test_whole_word_masking_keeps_words_whole_and_fills_like_the_original():
    vocab = 1000
    word_start = np.ones(vocab, bool)
    word_start[600:] = False  # ids 600.. are '##' continuation pieces
    rng = np.random.default_rng(5)
    n = 6000
    ids, input_mask = pairs(n, vocab, seed=5)
    # About 45% of pieces continue a word: words of 1, 2, 3... pieces.
    continuation = rng.random(ids.shape) < 0.45
    piece = np.where(
        continuation, rng.integers(600, vocab, ids.shape), rng.integers(110, 600, ids.shape)
    )
    ids = np.where(ids >= 110, piece, ids).astype(np.int32)
    config = PretrainDataConfig("unused", whole_word_masking=True, max_predictions_per_seq=20)
    out = run(ids, input_mask, config, tokens(vocab, word_start))

    maskable = (input_mask == 1) & ~np.isin(ids, [CLS, SEP, PAD])
    starts = maskable & (word_start[ids] | ~np.pad(maskable[:, :-1], ((0, 0), (1, 0))))
    word_of = np.cumsum(starts, axis=1) - 1
    real = out["mlm_weights"] == 1
    counts = real.sum(1)
    wanted = expected_predictions(ids, input_mask, 0.15, 20)
    reference_rng = random.Random(0)
    reference = []
    for row in range(n):
        chosen = np.zeros(SEQ, bool)
        chosen[out["mlm_positions"][row][real[row]]] = True
        words = word_of[row][maskable[row]]
        picked = chosen[maskable[row]]
        # Every word is chosen entirely or not at all.
        for w in np.unique(words[picked]):
            assert picked[words == w].all(), f"row {row}: word {w} split"
        assert counts[row] <= wanted[row]
        lengths = np.bincount(words)
        reference.append(
            reference_whole_word_count(lengths[lengths > 0], wanted[row], reference_rng)
        )
    # Same mean fill as the original's greedy loop (within 5 standard errors).
    reference = np.array(reference)
    sd = np.sqrt((counts.var() + reference.var()) / n)
    assert abs(counts.mean() - reference.mean()) < 5 * sd + 1e-3, (counts.mean(), reference.mean())
    assert counts.mean() > 0.9 * wanted.mean()


def test_whole_words_match_hugging_face_word_ids(uncased_vocab):
    from transformers import BertTokenizerFast

    from bert_jax.text.load import load_tokenizer

    text = (
        "Unbelievably, the grandmaster's counterattack overwhelmed everyone: spectators "
        "gasped, commentators stammered, and the tournament's organisers reconsidered the "
        "tiebreak regulations immediately afterwards."
    )
    hf = BertTokenizerFast(vocab_file=str(uncased_vocab), do_lower_case=True)
    encoded = hf(text)
    ids = np.array(encoded["input_ids"], np.int32)
    words = np.array([-1 if w is None else w for w in encoded.word_ids()])
    assert len(set(words)) < len(words) - 3  # several multi-piece words
    seq = len(ids)
    batch = np.tile(ids, (2000, 1))
    toks = SpecialTokens.from_tokenizer(load_tokenizer(uncased_vocab))
    config = PretrainDataConfig("unused", whole_word_masking=True, masked_lm_prob=0.3)
    out = run(batch, np.ones_like(batch), config, toks)
    chosen = np.zeros((2000, seq), bool)
    rows, slots = np.nonzero(out["mlm_weights"])
    chosen[rows, out["mlm_positions"][rows, slots]] = True
    for w in set(words) - {-1}:
        group = chosen[:, words == w]
        assert np.all(group.all(1) | ~group.any(1)), f"word {w} split"
    assert chosen[:, words == -1].sum() == 0
