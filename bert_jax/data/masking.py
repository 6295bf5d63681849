"""Dynamic masked-LM masking of whole batches with vectorised TensorFlow ops (a tf.data map).

Follows google-research/bert `create_masked_lm_predictions`:
- num_to_predict = min(max_predictions, max(1, round(length * rate))), where length counts
  [CLS] and [SEP] (Python 3 round, half to even, as `tf.round`);
- [CLS], [SEP] and padding are never chosen; the chosen positions are a uniform random subset;
- each chosen token becomes [MASK] (80%), a token uniform over the whole vocab (10%) or stays (10%);
- whole-word masking takes words in random order and adds a word only if all its pieces still
  fit under num_to_predict, skipping words that do not (as the original's `continue`). This is
  exact up to `_GREEDY_PASSES` skipped words per sequence; later words are left unchosen.
  A word starts at a piece the word-start table marks, or right after [CLS]/[SEP] (the original
  would glue a '##' piece after [SEP] onto the last word of segment A).
- positions come out sorted ascending; unused prediction slots hold position 0, id 0, weight 0.

Randomness is stateless (`tf.random.stateless_*`) keyed by a [2] int64 seed per batch, so the same
(seed, step) gives the same mask and every step gets fresh masks.
"""

from __future__ import annotations

import tensorflow as tf

from bert_jax.data.pretrain_config import PretrainDataConfig, SpecialTokens, check_masking_inputs

_GREEDY_PASSES = 4


def make_masker(config: PretrainDataConfig, tokens: SpecialTokens):
    """A function `(batch, seed) -> batch` for `tf.data` maps.

    `batch` holds `input_ids` (unmasked) and `input_mask` [B, S] plus any other features, which
    pass through; `seed` is an int64 [2] tensor. The result adds `mlm_positions`, `mlm_ids`
    (int32 [B, P]) and `mlm_weights` (float32 [B, P]) and replaces `input_ids` by the masked ids.
    """
    check_masking_inputs(config, tokens)
    word_start = None
    if config.whole_word_masking:
        word_start = tf.constant(tokens.word_start, dtype=tf.bool)

    def mask(batch: dict, seed: tf.Tensor) -> dict:
        masked, positions, ids, weights = mask_tokens(
            batch["input_ids"],
            batch["input_mask"],
            seed,
            tokens=tokens,
            max_predictions=config.max_predictions_per_seq,
            rate=config.masked_lm_prob,
            mask_token_prob=config.mask_token_prob,
            random_token_prob=config.random_token_prob,
            word_start=word_start,
        )
        out = dict(batch)
        out.update(input_ids=masked, mlm_positions=positions, mlm_ids=ids, mlm_weights=weights)
        return out

    return mask


def mask_tokens(
    input_ids: tf.Tensor,
    input_mask: tf.Tensor,
    seed: tf.Tensor,
    *,
    tokens: SpecialTokens,
    max_predictions: int,
    rate: float,
    mask_token_prob: float,
    random_token_prob: float,
    word_start: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Returns (masked ids [B,S], positions [B,P], original ids [B,P], weights [B,P])."""
    ids = tf.cast(input_ids, tf.int32)
    seq_len = ids.shape[1]
    real = tf.cast(input_mask, tf.bool)
    candidate = (
        real & tf.not_equal(ids, tokens.cls_id) & tf.not_equal(ids, tokens.sep_id)
    ) & tf.not_equal(ids, tokens.pad_id)
    length = tf.reduce_sum(tf.cast(real, tf.float64), axis=1)
    num_to_predict = tf.cast(tf.round(length * rate), tf.int32)
    num_to_predict = tf.minimum(max_predictions, tf.maximum(1, num_to_predict))

    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
    if word_start is None:
        positions = _choose_tokens(candidate, num_to_predict, max_predictions, seeds[0])
        weights = positions < seq_len  # unused slots hold seq_len until here
        positions = tf.where(weights, positions, 0)
        chosen = tf.reduce_any(
            tf.equal(positions[:, :, None], tf.range(seq_len, dtype=tf.int32))
            & weights[:, :, None],
            axis=1,
        )
    else:
        chosen = _choose_whole_words(ids, candidate, num_to_predict, word_start, seeds[0])
        positions, weights = _compact_positions(chosen, max_predictions)

    # One draw per position (not per slot) keeps the replacement a pure elementwise select.
    shape = tf.shape(ids)
    choice = tf.random.stateless_uniform(shape, seeds[1])
    random_ids = tf.random.stateless_uniform(
        shape, seeds[2], minval=0, maxval=tokens.vocab_size, dtype=tf.int32
    )
    replacement = tf.where(
        choice < mask_token_prob,
        tokens.mask_id,
        tf.where(choice < mask_token_prob + random_token_prob, random_ids, ids),
    )
    masked = tf.where(chosen, replacement, ids)
    original = tf.gather(ids, positions, batch_dims=1) * tf.cast(weights, tf.int32)
    return masked, positions, original, tf.cast(weights, tf.float32)


def _choose_tokens(candidate, num_to_predict, max_predictions, seed):
    """Sorted positions of a uniform random subset of `num_to_predict` candidates per row;
    unused slots hold seq_len."""
    seq_len = candidate.shape[1]
    score = tf.random.stateless_uniform(tf.shape(candidate), seed)
    score = tf.where(candidate, score, -1.0)
    top_score, top_index = tf.math.top_k(score, k=max_predictions, sorted=True)
    keep = (tf.range(max_predictions)[None, :] < num_to_predict[:, None]) & (top_score >= 0.0)
    return tf.sort(tf.where(keep, top_index, seq_len), axis=1)


def _inclusive_cumsum(x: tf.Tensor) -> tf.Tensor:
    """Row-wise running sum of small non-negative ints, as a matmul with a triangular matrix
    (several times faster than `tf.cumsum` on CPU for rows of a few hundred; exact below 2**24)."""
    n = x.shape[1]
    upper = tf.linalg.band_part(tf.ones([n, n], tf.float32), 0, -1)
    return tf.cast(tf.matmul(tf.cast(x, tf.float32), upper), tf.int32)


def _compact_positions(chosen, max_predictions):
    """Ascending positions of the chosen tokens in `max_predictions` slots (at most that many are
    chosen), unused slots 0, and their weights."""
    seq_len = chosen.shape[1]
    slot = _inclusive_cumsum(tf.cast(chosen, tf.int32)) - 1
    in_slot = tf.equal(slot[:, :, None], tf.range(max_predictions)) & chosen[:, :, None]
    index = tf.range(seq_len, dtype=tf.int32)[None, :, None]
    positions = tf.reduce_sum(tf.where(in_slot, index, 0), axis=1)
    weights = (
        tf.range(max_predictions)[None, :] < tf.reduce_sum(tf.cast(chosen, tf.int32), 1)[:, None]
    )
    return positions, weights


def _choose_whole_words(ids, candidate, num_to_predict, word_start, seed):
    """[B, S] bool: the original's greedy fill over words in random order (whole-word masking)."""
    seq_len = candidate.shape[1]
    batch = tf.shape(ids)[0]
    previous_candidate = tf.pad(candidate[:, :-1], [[0, 0], [1, 0]])
    starts = candidate & (tf.gather(word_start, ids) | ~previous_candidate)
    word_id = tf.maximum(_inclusive_cumsum(tf.cast(starts, tf.int32)) - 1, 0)  # [B, S]
    num_words = tf.reduce_sum(tf.cast(starts, tf.int32), axis=1)

    # Word lengths in pieces, indexed by word id (only candidates count).
    row_offset = tf.range(batch)[:, None] * seq_len
    word_length = tf.reshape(
        tf.math.unsorted_segment_sum(
            tf.cast(candidate, tf.int32), word_id + row_offset, batch * seq_len
        ),
        [batch, seq_len],
    )
    is_word = tf.range(seq_len)[None, :] < num_words[:, None]
    score = tf.where(is_word, tf.random.stateless_uniform([batch, seq_len], seed), -1.0)
    order = tf.argsort(score, axis=1, direction="DESCENDING")  # random order of the words
    length = tf.gather(word_length, order, batch_dims=1)
    pending = tf.range(seq_len)[None, :] < num_words[:, None]  # real words sort first
    place = tf.range(seq_len)[None, :]

    remaining = num_to_predict
    taken = tf.zeros_like(pending)
    for _ in range(_GREEDY_PASSES):
        fits = pending & (length <= remaining[:, None])
        running = _inclusive_cumsum(tf.where(fits, length, 0))
        take = fits & (running <= remaining[:, None])
        # The first word that no longer fits is skipped; later words get the next pass.
        first_overflow = tf.reduce_min(
            tf.where(fits & (running > remaining[:, None]), place, seq_len), axis=1
        )
        taken |= take
        remaining -= tf.reduce_sum(tf.where(take, length, 0), axis=1)
        pending &= place > first_overflow[:, None]

    # Back from sorted order to word ids: invert the permutation of the flattened batch.
    rank = tf.reshape(tf.math.invert_permutation(tf.reshape(order + row_offset, [-1])), [batch, -1])
    word_taken = tf.gather(tf.reshape(taken, [-1]), rank)
    return candidate & tf.gather(word_taken, word_id, batch_dims=1)
