"""The pretraining input pipeline: prepared shards -> per-process host batches.

Training stream of one process (`train_batches`):
- the process reads its own disjoint units of the train shards (`shard_reader.process_units`);
- each epoch the units are put in a seeded order and taken `cycle_length` at a time (a group);
- a round reads one window of documents (about shuffle_buffer * max_seq_length / cycle_length
  tokens) from every unit of the group, makes examples from all of them together
  (`pretraining.create_examples`, random B drawn across the units) and permutes them;
- rounds are cut into host batches of global_batch / process_count and masked afresh on every
  step by a tf.data map (`masking.make_masker`) keyed on (seed, process, step); repeats forever.
Everything is seeded by (seed, process index, epoch, group, round), so a run replays exactly.

Resuming: `PretrainIterator.state()` is a small JSON dict: the epoch, group and round of the next
example, where each unit of the group had reached at that round (record index and byte offset),
the example's place in the round, and the step. Resuming regenerates that one round and skips
into it: earlier epochs and groups are skipped by arithmetic, each of the group's files is opened
at its recorded byte offset (one seek: nothing before it is read, however deep into a large or
remote shard), no earlier example is made again. A state saved without byte offsets (before they
were recorded) still resumes, by scanning each file's records from its start. The state is valid
only for the same data files, process count, per-process batch and the data fields that shape
examples (mode, max_seq_length, short_seq_prob, seed, shuffle_buffer, cycle_length); anything
else raises UserError. With several processes, save `gather_process_states(...)` (every process
calls it) and pass it back whole: each process picks its own entry.

The held-out eval set is `eval_batches` (see `bert_jax.data.eval_data`).
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import weakref

import numpy as np

from bert_jax.data import shard_reader
from bert_jax.data.pretrain_config import PretrainDataConfig, SpecialTokens, check_masking_inputs
from bert_jax.data.pretraining import DocumentBlock, create_examples
from bert_jax.errors import UserError

STATE_VERSION = 1
_STATE_BYTES = 4096  # room for one process's JSON state in `gather_process_states`
# Purposes mixed into derived seeds, so no two random streams share one.
_PAIRS, _ORDER, _UNIT_ORDER, _MASK = 1, 2, 3, 4


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (numpy's SeedSequence hashing)."""
    entropy = [int(p) & 0xFFFF_FFFF_FFFF_FFFF for p in parts]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def process_layout(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    """(index, count) of this process; JAX is asked only when one is not given."""
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise UserError(f"process index {process_index} is not in [0, {process_count})")
    return process_index, process_count


def host_batch_size(global_batch_size: int, process_count: int) -> int:
    if global_batch_size < 1 or global_batch_size % process_count:
        raise UserError(
            f"global batch {global_batch_size} is not divisible by {process_count} processes"
        )
    return global_batch_size // process_count


@dataclasses.dataclass(frozen=True)
class _Position:
    """Where the next example of a process's stream comes from."""

    epoch: int = 0
    group: int = 0
    round: int = 0
    example: int = 0  # index into the round's permuted examples
    step: int = 0  # batches handed out before it
    offsets: tuple[int, ...] | None = None  # each unit's next record at the round; -1 = done
    # Byte offset in its file of each unit's record `offsets[i]`; -1 = unknown (an old state).
    byte_offsets: tuple[int, ...] | None = None

    def encode(self, cycle_length: int) -> np.ndarray:
        def padded(values):
            values = list(values or ())
            return values + [-1] * (cycle_length - len(values))

        head = [self.epoch, self.group, self.round, self.example, self.step]
        return np.array(head + padded(self.offsets) + padded(self.byte_offsets), np.int64)

    @classmethod
    def decode(cls, vector) -> _Position:
        v = [int(x) for x in vector]
        c = (len(v) - 5) // 2
        return cls(*v[:5], offsets=tuple(v[5 : 5 + c]), byte_offsets=tuple(v[5 + c :]))

    def place(self, unit: int) -> shard_reader.Place:
        """Where unit `unit` of the group resumes (start of the file for a fresh group)."""
        if self.offsets is None:
            return shard_reader.Place()
        byte = self.byte_offsets[unit] if self.byte_offsets is not None else -1
        return shard_reader.Place(self.offsets[unit], byte if byte >= 0 else None)


class _TrainStream:
    """The generator behind one process's training tf.data pipeline (see the module docstring)."""

    def __init__(self, config, tokens, files, process_index, process_count, batch_size, start):
        self.config, self.tokens = config, tokens
        self.units = shard_reader.process_units(files, process_index, process_count)
        self.process_index, self.process_count = process_index, process_count
        self.batch_size, self.start = batch_size, start
        self.fingerprint = _fingerprint(config, files, process_count, batch_size)
        budget = config.shuffle_buffer * config.max_seq_length // config.cycle_length
        self.window_tokens = max(1, budget)
        self.mask_key = derive_seed(config.seed, _MASK, process_index)
        self.error: UserError | None = None  # raised inside tf.data; re-raised by the iterator

    def __call__(self):
        try:
            yield from self._batches()
        except UserError as e:
            self.error = e
            raise

    def groups(self, epoch: int) -> list[list[shard_reader.Unit]]:
        rng = np.random.default_rng(
            derive_seed(self.config.seed, _UNIT_ORDER, self.process_index, epoch)
        )
        units = [self.units[i] for i in rng.permutation(len(self.units))]
        c = self.config.cycle_length
        return [units[i : i + c] for i in range(0, len(units), c)]

    def state(self, position: _Position) -> dict:
        return {
            "version": STATE_VERSION,
            "process_index": self.process_index,
            "process_count": self.process_count,
            "fingerprint": self.fingerprint,
            **dataclasses.asdict(position),
            "offsets": list(position.offsets) if position.offsets is not None else None,
            "byte_offsets": (
                list(position.byte_offsets) if position.byte_offsets is not None else None
            ),
        }

    def _rounds(self):
        """(position of the round's first example, its permuted examples), from `start` on."""
        start = self.start
        epoch, group, round_ = start.epoch, start.group, start.round
        while True:
            fresh_epoch, produced = group == 0 and round_ == 0 and start.offsets is None, False
            groups = self.groups(epoch)
            while group < len(groups):
                readers = [
                    None
                    if start.offsets is not None and start.offsets[i] < 0
                    else shard_reader.UnitReader(unit, start.place(i), self.tokens.vocab_size)
                    for i, unit in enumerate(groups[group])
                ]
                while True:
                    places = [r.place if r else None for r in readers]
                    round_offsets = tuple(p.record if p else -1 for p in places)
                    round_bytes = tuple(
                        -1 if p is None or p.offset is None else p.offset for p in places
                    )
                    windows = []
                    for i, reader in enumerate(readers):
                        window = reader.next_window(self.window_tokens) if reader else None
                        if window is None:
                            readers[i] = None
                        else:
                            windows.append(window)
                    if not windows:
                        break
                    examples = self._examples(windows, epoch, group, round_)
                    produced |= len(examples["nsp_label"]) > 0
                    where = _Position(epoch, group, round_, 0, 0, round_offsets, round_bytes)
                    yield where, examples
                    round_ += 1
                group, round_, start = group + 1, 0, _Position()
            if fresh_epoch and not produced:
                raise UserError(
                    f"process {self.process_index} of {self.process_count} made no "
                    f"{self.config.mode} examples from {len(self.units)} units of "
                    f"{self.config.data_dir} (too few documents, or single-sentence documents "
                    "only in sop mode)"
                )
            epoch, group = epoch + 1, 0

    def _examples(self, windows, epoch, group, round_):
        c, h = self.config, self.process_index
        block = windows[0] if len(windows) == 1 else DocumentBlock.concatenate(windows)
        examples = create_examples(
            block,
            mode=c.mode,
            max_seq_length=c.max_seq_length,
            short_seq_prob=c.short_seq_prob,
            seed=derive_seed(c.seed, _PAIRS, h, epoch, group, round_),
            tokens=self.tokens,
        )
        rng = np.random.default_rng(derive_seed(c.seed, _ORDER, h, epoch, group, round_))
        order = rng.permutation(len(examples["nsp_label"]))
        return {k: v[order] for k, v in examples.items()}

    def _batches(self):
        size, step, skip = self.batch_size, self.start.step, self.start.example
        pieces, filled = [], 0
        for where, examples in self._rounds():
            count, i, skip = len(examples["nsp_label"]), skip, 0
            while i < count:
                take = min(size - filled, count - i)
                pieces.append({k: v[i : i + take] for k, v in examples.items()})
                filled, i = filled + take, i + take
                if filled < size:
                    continue
                batch = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
                batch["example_weights"] = np.ones(size, np.float32)
                after = dataclasses.replace(where, example=i, step=step + 1)
                batch["_position"] = after.encode(self.config.cycle_length)
                batch["_mask_seed"] = np.array([self.mask_key, step], np.int64)
                yield batch
                step, pieces, filled = step + 1, [], 0


class PretrainIterator:
    """Host batches (dicts of numpy arrays) of a process's training stream, forever.

    `state()` is the JSON-able position right after the last batch returned (or the start).
    """

    def __init__(self, dataset, stream: _TrainStream):
        self.dataset = dataset
        self._stream = stream
        self._iterator, self._closed = None, False
        self._state = stream.state(stream.start)
        self._tf_errors = shard_reader.tensorflow().errors
        close_at_exit(self)

    def close(self) -> None:
        """Stop the pipeline's threads; the iterator is finished (resume from `state()`)."""
        self._iterator, self._closed = None, True

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        if self._closed:
            raise StopIteration
        if self._iterator is None:
            self._iterator = self.dataset.as_numpy_iterator()
        try:
            batch = next(self._iterator)
        except self._tf_errors.OpError:
            if self._stream.error is not None:
                raise self._stream.error from None
            raise
        self._state = self._stream.state(_Position.decode(batch.pop("_position")))
        return batch

    def state(self) -> dict:
        return dict(self._state)


def close_at_exit(owner) -> None:
    """Call `owner.close()` when the interpreter exits, if `owner` still lives then.

    A tf.data iterator over a Python generator that is still alive when Python finalizes can
    hang the exit: its threads wait for the GIL while the exit waits for them. Closing it from
    an atexit hook, while threads can still run Python, lets it stop cleanly.
    """
    ref = weakref.ref(owner)

    def close():
        alive = ref()
        if alive is not None:
            alive.close()

    atexit.register(close)


def train_batches(
    config: PretrainDataConfig,
    tokens: SpecialTokens,
    global_batch_size: int,
    *,
    process_index: int | None = None,
    process_count: int | None = None,
    state: dict | None = None,
) -> PretrainIterator:
    """This process's training batches: input_ids (masked), segment_ids, input_mask [B, S] int32;
    mlm_positions, mlm_ids [B, P] int32; mlm_weights [B, P] float32; nsp_label [B] int32;
    example_weights [B] float32 (all 1). B = global_batch_size / process_count.

    `state`: from `PretrainIterator.state()` or `gather_process_states`, to resume exactly.
    """
    config.validate()
    check_masking_inputs(config, tokens)
    process_index, process_count = process_layout(process_index, process_count)
    batch_size = host_batch_size(global_batch_size, process_count)
    files = shard_reader.list_shards(config.data_dir, "train")
    shard_reader.check_vocab_size(config.data_dir, tokens.vocab_size)
    stream = _TrainStream(
        config, tokens, files, process_index, process_count, batch_size, _Position()
    )
    if state is not None:
        stream.start = _resume_position(stream, state)
    dataset = _train_dataset(stream, config, tokens)
    return PretrainIterator(dataset, stream)


def _train_dataset(stream: _TrainStream, config: PretrainDataConfig, tokens: SpecialTokens):
    tf = shard_reader.tensorflow()
    from bert_jax.data.masking import make_masker

    size, length = stream.batch_size, config.max_seq_length
    signature = {
        "input_ids": tf.TensorSpec([size, length], tf.int32),
        "segment_ids": tf.TensorSpec([size, length], tf.int32),
        "input_mask": tf.TensorSpec([size, length], tf.int32),
        "nsp_label": tf.TensorSpec([size], tf.int32),
        "example_weights": tf.TensorSpec([size], tf.float32),
        "_position": tf.TensorSpec([5 + 2 * config.cycle_length], tf.int64),
        "_mask_seed": tf.TensorSpec([2], tf.int64),
    }
    mask = make_masker(config, tokens)

    def masked(batch):
        batch = dict(batch)
        seed = batch.pop("_mask_seed")
        return mask(batch, seed)

    dataset = tf.data.Dataset.from_generator(stream, output_signature=signature)
    dataset = dataset.map(masked, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(config.prefetch_batches)


def _fingerprint(config: PretrainDataConfig, files, process_count: int, batch_size: int) -> str:
    shaping = {
        "files": [f.rsplit("/", 1)[-1] for f in files],
        "process_count": process_count,
        "batch_size": batch_size,
        **{
            k: getattr(config, k)
            for k in ("mode", "max_seq_length", "short_seq_prob", "seed", "shuffle_buffer")
        },
        "cycle_length": config.cycle_length,
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def _resume_position(stream: _TrainStream, state: dict) -> _Position:
    if "processes" in state:  # the gathered states of all processes
        if state.get("process_count") != stream.process_count:
            raise UserError(
                f"data state was saved by {state.get('process_count')} processes; this run has "
                f"{stream.process_count}: the input stream cannot resume exactly across a change "
                "in process count (start the data afresh or use the same number of processes)"
            )
        state = state["processes"][stream.process_index]
    if state.get("version") != STATE_VERSION:
        raise UserError(f"data state version {state.get('version')} is not {STATE_VERSION}")
    if state.get("process_count") != stream.process_count:
        raise UserError(
            f"data state was saved by one of {state.get('process_count')} processes; this run "
            f"has {stream.process_count}: exact resume needs the same process count"
        )
    if state.get("process_index") != stream.process_index:
        raise UserError(
            f"data state belongs to process {state.get('process_index')}, not "
            f"{stream.process_index}"
        )
    if state.get("fingerprint") != stream.fingerprint:
        raise UserError(
            "data state was saved with other data files, per-process batch or data fields (mode, "
            "max_seq_length, short_seq_prob, seed, shuffle_buffer, cycle_length); exact resume "
            "needs them unchanged"
        )
    offsets, byte_offsets = state.get("offsets"), state.get("byte_offsets")
    return _Position(
        epoch=int(state["epoch"]),
        group=int(state["group"]),
        round=int(state["round"]),
        example=int(state["example"]),
        step=int(state["step"]),
        offsets=tuple(int(o) for o in offsets) if offsets is not None else None,
        byte_offsets=(
            tuple(int(o) for o in byte_offsets)
            if offsets is not None and byte_offsets is not None
            else None
        ),
    )


def gather_process_states(state: dict) -> dict:
    """Every process's `PretrainIterator.state()` in one JSON-able dict to checkpoint. A collective:
    all processes must call it at the same step."""
    from jax.experimental import multihost_utils

    encoded = json.dumps(state, sort_keys=True).encode()
    if len(encoded) > _STATE_BYTES:
        raise ValueError(f"data state of {len(encoded)} bytes exceeds {_STATE_BYTES}")
    buffer = np.zeros(_STATE_BYTES, np.uint8)
    buffer[: len(encoded)] = np.frombuffer(encoded, np.uint8)
    rows = np.asarray(multihost_utils.process_allgather(buffer)).reshape(-1, _STATE_BYTES)
    states = [json.loads(bytes(row).rstrip(b"\0")) for row in rows]
    return {"version": STATE_VERSION, "process_count": len(states), "processes": states}
