"""The held-out eval set: the eval shards, one finite pass, identical every time it is read.

Every process reads all eval shards in file order and builds the same global batches: pairs are
seeded by (eval_seed, window), masks by (eval_seed, global batch index), and each global batch is
masked whole before a process takes its rows. So the eval set and its masks do not depend on the
number of processes, the shuffle settings or the training seed. The final global batch is padded
with empty rows (input_mask 0, mlm_weights 0, example_weights 0), not dropped: weight the NSP
terms by `example_weights`.
"""

from __future__ import annotations

import numpy as np

from bert_jax.data import shard_reader
from bert_jax.data.pipeline import close_at_exit, derive_seed, host_batch_size, process_layout
from bert_jax.data.pretrain_config import PretrainDataConfig, SpecialTokens, check_masking_inputs
from bert_jax.data.pretraining import create_examples
from bert_jax.errors import UserError

_EVAL_PAIRS, _EVAL_MASK = 5, 6
_WINDOW_TOKENS = 1 << 20  # fixed, so the eval set does not depend on training's shuffle_buffer


class EvalBatches:
    """Iterable over this process's eval batches (dicts of numpy arrays); every iteration is one
    full pass with the same batches. `num_batches` is known after the first pass."""

    def __init__(self, config, tokens, files, global_batch_size, process_index, process_count):
        self.config, self.tokens, self.files = config, tokens, files
        self.global_batch_size = global_batch_size
        self.batch_size = host_batch_size(global_batch_size, process_count)
        self.process_index = process_index
        self.num_batches: int | None = None
        self._error: UserError | None = None
        self._live: list = []  # tf.data iterators of passes in progress
        close_at_exit(self)

    def close(self) -> None:
        """Stop the threads of passes in progress."""
        self._live.clear()

    def __iter__(self):
        errors = shard_reader.tensorflow().errors
        count = 0
        iterator = self.dataset().as_numpy_iterator()
        self._live.append(iterator)
        try:
            while True:
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                except errors.OpError:
                    if self._error is not None:
                        raise self._error from None
                    raise
                count += 1
                yield batch
        finally:
            if iterator in self._live:
                self._live.remove(iterator)
        self.num_batches = count

    def dataset(self):
        """The pass as a tf.data.Dataset of host batches."""
        tf = shard_reader.tensorflow()
        from bert_jax.data.masking import make_masker

        size, length = self.global_batch_size, self.config.max_seq_length
        signature = {
            "input_ids": tf.TensorSpec([size, length], tf.int32),
            "segment_ids": tf.TensorSpec([size, length], tf.int32),
            "input_mask": tf.TensorSpec([size, length], tf.int32),
            "nsp_label": tf.TensorSpec([size], tf.int32),
            "example_weights": tf.TensorSpec([size], tf.float32),
            "_index": tf.TensorSpec([], tf.int64),
        }
        mask = make_masker(self.config, self.tokens)
        mask_key = derive_seed(self.config.eval_seed, _EVAL_MASK)
        rows = slice(
            self.process_index * self.batch_size, (self.process_index + 1) * self.batch_size
        )

        def masked_rows(batch):
            batch = dict(batch)
            seed = tf.stack([tf.constant(mask_key, tf.int64), batch.pop("_index")])
            return {k: v[rows] for k, v in mask(batch, seed).items()}

        dataset = tf.data.Dataset.from_generator(self._global_batches, output_signature=signature)
        dataset = dataset.map(masked_rows, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.prefetch(self.config.prefetch_batches)

    def _global_batches(self):
        try:
            yield from self._batches()
        except UserError as e:
            self._error = e
            raise

    def _batches(self):
        size, index, pieces, filled = self.global_batch_size, 0, [], 0
        for examples in self._examples():
            count, i = len(examples["nsp_label"]), 0
            while i < count:
                take = min(size - filled, count - i)
                pieces.append({k: v[i : i + take] for k, v in examples.items()})
                filled, i = filled + take, i + take
                if filled == size:
                    yield self._batch(pieces, index)
                    index, pieces, filled = index + 1, [], 0
        if filled:
            pieces.append(self._padding(size - filled))
            yield self._batch(pieces, index)
            index += 1
        if index == 0:
            raise UserError(f"the eval shards of {self.config.data_dir} hold no examples")

    def _examples(self):
        window_index = 0
        for path in self.files:
            reader = shard_reader.UnitReader(
                shard_reader.Unit(path), shard_reader.Place(), self.tokens.vocab_size
            )
            while (block := reader.next_window(_WINDOW_TOKENS)) is not None:
                examples = create_examples(
                    block,
                    mode=self.config.mode,
                    max_seq_length=self.config.max_seq_length,
                    short_seq_prob=self.config.short_seq_prob,
                    seed=derive_seed(self.config.eval_seed, _EVAL_PAIRS, window_index),
                    tokens=self.tokens,
                )
                examples["example_weights"] = np.ones(len(examples["nsp_label"]), np.float32)
                window_index += 1
                yield examples

    def _padding(self, rows: int) -> dict[str, np.ndarray]:
        length = self.config.max_seq_length
        return {
            "input_ids": np.full((rows, length), self.tokens.pad_id, np.int32),
            "segment_ids": np.zeros((rows, length), np.int32),
            "input_mask": np.zeros((rows, length), np.int32),
            "nsp_label": np.zeros(rows, np.int32),
            "example_weights": np.zeros(rows, np.float32),
        }

    @staticmethod
    def _batch(pieces, index):
        batch = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
        batch["_index"] = np.int64(index)
        return batch


def eval_batches(
    config: PretrainDataConfig,
    tokens: SpecialTokens,
    global_batch_size: int,
    *,
    process_index: int | None = None,
    process_count: int | None = None,
) -> EvalBatches:
    """This process's rows of every eval global batch; the same features as `train_batches`."""
    config.validate()
    check_masking_inputs(config, tokens)
    process_index, process_count = process_layout(process_index, process_count)
    files = shard_reader.list_shards(config.data_dir, "eval")
    shard_reader.check_vocab_size(config.data_dir, tokens.vocab_size)
    return EvalBatches(config, tokens, files, global_batch_size, process_index, process_count)
