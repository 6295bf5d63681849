"""Reading prepared shards: `{split}-NNNNN-of-MMMMM.tfrecord` files of one `tf.train.Example` per
document (int64 lists `token_ids`, all sentences concatenated without special tokens, and
`sentence_lengths`), and `metadata.json` beside them.

A process reads "units": a whole file, or every m-th document of a file when there are fewer
files than processes. Units are read in windows of whole documents of about a token budget;
a reader's position is the record index of its next document, so a run can reopen a unit there.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import json

import numpy as np

from bert_jax.data.pretraining import DocumentBlock
from bert_jax.errors import UserError

_PARSE_CHUNK = 256  # records parsed per TensorFlow call


@dataclasses.dataclass(frozen=True)
class Unit:
    """Documents `part`, `part + parts`, `part + 2 * parts`, ... of one shard file."""

    path: str
    part: int = 0
    parts: int = 1


def list_shards(data_dir: str, split: str) -> list[str]:
    """The split's shard files, sorted (local paths or any filesystem TensorFlow reads, gs://)."""
    gfile = tensorflow().io.gfile
    if not gfile.isdir(data_dir):
        raise UserError(f"data_dir {data_dir} is not a directory")
    files = sorted(gfile.glob(f"{data_dir.rstrip('/')}/{split}-*.tfrecord"))
    if not files:
        raise UserError(
            f"data_dir {data_dir} has no {split}-*.tfrecord shards (run `bert-jax prepare` first)"
        )
    # Names end in -of-NNNNN: every one of the NNNNN must be there.
    announced = {f.rsplit("-of-", 1)[-1].split(".")[0] for f in files}
    if len(announced) == 1 and (count := announced.pop()).isdigit():
        expected = int(count)
        if len(files) != expected:
            raise UserError(
                f"data_dir {data_dir} has {len(files)} of the {expected} {split} shards its file "
                "names announce; the dataset is incomplete"
            )
    return files


def read_metadata(data_dir: str) -> dict | None:
    """metadata.json as a dict, or None when the directory has none. The format's own reader
    (`bert_jax.data.shards`, which `prepare` writes with) is used when it is there."""
    path = f"{data_dir.rstrip('/')}/metadata.json"
    gfile = tensorflow().io.gfile
    if not gfile.exists(path):
        return None
    shard_format = _shard_format()
    if shard_format is not None and hasattr(shard_format, "read_metadata"):
        return shard_format.read_metadata(data_dir)
    try:
        with gfile.GFile(path, "r") as f:
            return json.loads(f.read())
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is not readable JSON: {e}") from e


def check_tokenizer(data_dir: str, tokenizer) -> None:
    """UserError unless the shards were made with this tokenizer (fingerprint where the format
    module can check it, else the vocab size)."""
    metadata = read_metadata(data_dir)
    if metadata is None:
        return
    shard_format = _shard_format()
    if shard_format is not None and hasattr(shard_format, "check_tokenizer"):
        shard_format.check_tokenizer(metadata, tokenizer)
        return
    check_vocab_size(data_dir, int(tokenizer.vocab_size), metadata)


def check_vocab_size(data_dir: str, vocab_size: int, metadata: dict | None = None) -> None:
    """The shards' token ids must come from a tokenizer with this vocab size."""
    metadata = read_metadata(data_dir) if metadata is None else metadata
    expected = ((metadata or {}).get("tokenizer") or {}).get("vocab_size")
    if expected is not None and int(expected) != vocab_size:
        raise UserError(
            f"{data_dir}/metadata.json says the shards were tokenized with a vocab of {expected} "
            f"tokens, but the tokenizer given has {vocab_size}"
        )


def _shard_format():
    try:
        from bert_jax.data import shards
    except ImportError:
        return None
    return shards


def _open_records(path: str):
    """TensorFlow's C++ TFRecord reader as a plain Python iterator (checks record CRCs; reads any
    filesystem TensorFlow knows). Opening it costs about 1 ms of CPU against about 20 ms for an
    eager `tf.data.TFRecordDataset` iterator, which matters when a corpus of many small shards
    reopens every unit every epoch. Its v1 deprecation notice would only be noise here."""
    tf = tensorflow()
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        return tf.compat.v1.io.tf_record_iterator(path)
    finally:
        logger.setLevel(level)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@functools.cache
def tensorflow():
    """TensorFlow for host-side input work only: hide accelerators from it so it never takes
    memory JAX needs (a no-op on the CPU build, or once TensorFlow has started)."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError, ValueError):
        tf.config.set_visible_devices([], "GPU")
    return tf


def process_units(files: list[str], process_index: int, process_count: int) -> list[Unit]:
    """The disjoint units of `process_index`: files round-robin; with fewer files than processes
    each file is split by document index into enough parts that every process gets one."""
    parts = -(-process_count // len(files)) if len(files) < process_count else 1
    units = [Unit(path, part, parts) for path in files for part in range(parts)]
    return units[process_index::process_count]


class UnitReader:
    """Windows of documents of one unit, from document record index `position` on."""

    def __init__(self, unit: Unit, position: int, vocab_size: int):
        tf = tensorflow()
        self._tf = tf
        self.unit = unit
        self.position = position  # record index of the next document to hand out
        self._vocab_size = vocab_size
        # The first record of this unit at or after `position`; skipping reads without parsing.
        self._next_index = position + (unit.part - position) % unit.parts
        self._chunks = self._record_chunks()
        self._parsed: collections.deque = collections.deque()  # (record, tokens, lengths)

    def next_window(self, token_budget: int) -> DocumentBlock | None:
        """Whole documents until `token_budget` tokens are reached (at least one); None at the
        end of the unit."""
        docs, total = [], 0
        while total < token_budget:
            if not self._parsed and not self._parse_more():
                break
            record, ids, lengths = self._parsed.popleft()
            self.position = record + self.unit.parts
            docs.append((ids, lengths))
            total += len(ids)
        if not docs:
            return None
        return DocumentBlock.from_lengths(
            np.concatenate([d[0] for d in docs]),
            np.concatenate([d[1] for d in docs]),
            [len(d[1]) for d in docs],
        )

    def _record_chunks(self):
        """Lists of up to _PARSE_CHUNK serialized records of the unit, from `_next_index` on."""
        first, parts, chunk = self._next_index, self.unit.parts, []
        for index, record in enumerate(_open_records(self.unit.path)):
            if index >= first and (index - first) % parts == 0:
                chunk.append(record)
                if len(chunk) == _PARSE_CHUNK:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def _parse_more(self) -> bool:
        try:
            serialized = next(self._chunks)
        except StopIteration:
            return False
        except self._tf.errors.OpError as e:
            raise UserError(f"{self.unit.path}: cannot read records: {_first_line(e)}") from e
        parts = self.unit.parts
        count = len(serialized)
        indices = list(range(self._next_index, self._next_index + count * parts, parts))
        self._next_index += count * parts
        self._parsed.extend(self._parse(serialized, indices))
        return bool(self._parsed)

    def _parse(self, serialized, indices: list[int]):
        tf = self._tf
        features = {
            "token_ids": tf.io.RaggedFeature(tf.int64),
            "sentence_lengths": tf.io.RaggedFeature(tf.int64),
        }
        try:
            parsed = tf.io.parse_example(tf.constant(serialized), features)
        except (tf.errors.InvalidArgumentError, ValueError) as e:
            raise UserError(
                f"{self.unit.path}: records {indices[0]}..{indices[-1]} are not pretraining "
                f"documents (int64 features token_ids, sentence_lengths): {_first_line(e)}"
            ) from e
        ids = parsed["token_ids"]
        lengths = parsed["sentence_lengths"]
        ids_values, ids_splits = ids.flat_values.numpy(), ids.row_splits.numpy()
        len_values, len_splits = lengths.flat_values.numpy(), lengths.row_splits.numpy()
        self._check(ids_values, ids_splits, len_values, len_splits, indices)
        ids_values = ids_values.astype(np.int32)
        return [
            (
                index,
                ids_values[ids_splits[i] : ids_splits[i + 1]],
                len_values[len_splits[i] : len_splits[i + 1]],
            )
            for i, index in enumerate(indices)
        ]

    def _check(self, ids, ids_splits, lengths, len_splits, indices):
        path = self.unit.path
        if len(ids) and (ids.min() < 0 or ids.max() >= self._vocab_size):
            raise UserError(
                f"{path}: token ids range over [{ids.min()}, {ids.max()}], outside the vocab of "
                f"{self._vocab_size} tokens (records {indices[0]}..{indices[-1]})"
            )
        if len(lengths) and lengths.min() < 0:
            raise UserError(f"{path}: negative sentence length in records {indices[0]}..")
        sums = np.add.reduceat(lengths, len_splits[:-1]) if len(lengths) else 0
        sums = np.where(np.diff(len_splits) > 0, sums, 0)
        bad = np.flatnonzero(sums != np.diff(ids_splits))
        if len(bad):
            i = bad[0]
            raise UserError(
                f"{path}: record {indices[i]} has {ids_splits[i + 1] - ids_splits[i]} token ids "
                f"but its sentence_lengths add up to {sums[i]}"
            )
