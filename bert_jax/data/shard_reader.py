"""Reading prepared shards: `{split}-NNNNN-of-MMMMM.tfrecord` files of one `tf.train.Example` per
document (int64 lists `token_ids`, all sentences concatenated without special tokens, and
`sentence_lengths`), and `metadata.json` beside them. Files are read through `bert_jax.paths`
(local or gs://) with the project's own TFRecord reader (`bert_jax.data.tfrecord`); TensorFlow only
parses the Example bytes, in memory.

A process reads "units": a whole file, or every m-th document of a file when there are fewer
files than processes. Units are read in windows of whole documents of about a token budget.
A reader's place is a `Place`: the index of the next record to look at and the byte offset where
it starts, so a run reopens a unit there with one seek, reading nothing before it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import json
import os

import numpy as np

from bert_jax import paths
from bert_jax.data import tfrecord
from bert_jax.data.pretraining import DocumentBlock
from bert_jax.errors import UserError

_PARSE_CHUNK = 256  # records parsed per TensorFlow call


@dataclasses.dataclass(frozen=True)
class Unit:
    """Documents `part`, `part + parts`, `part + 2 * parts`, ... of one shard file."""

    path: str
    part: int = 0
    parts: int = 1


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a reader of a unit resumes: `record` is the index of the next record of the file
    to look at, `offset` the byte where it starts (None: unknown, found by scanning from the
    start, for positions saved before offsets were recorded)."""

    record: int = 0
    offset: int | None = 0


def list_shards(data_dir: str, split: str) -> list[str]:
    """The split's shard files, sorted (local paths or gs://). UserError when the split has no
    files, or when metadata.json records no documents for it (datasets prepared before `prepare`
    stopped writing empty eval files: pretraining then runs without evaluation)."""
    try:
        directory = paths.path(data_dir)
        if not directory.is_dir():
            raise UserError(f"data_dir {data_dir} is not a directory")
        files = paths.glob(f"{os.fspath(directory)}/{split}-*.tfrecord")
    except OSError as e:
        raise UserError(paths.describe_error(data_dir, e)) from e
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
    # metadata.json lists the splits `prepare` wrote; a file it does not count is a leftover.
    splits = (read_metadata(data_dir) or {}).get("splits")
    if splits is not None and not (splits.get(split) or {}).get("documents"):
        raise UserError(f"data_dir {data_dir}: its metadata.json records no {split} documents")
    return files


def read_metadata(data_dir: str) -> dict | None:
    """metadata.json as a dict, or None when the directory has none. The format's own reader
    (`bert_jax.data.shards`, which `prepare` writes with) is used when it is there."""
    path = paths.path(data_dir) / "metadata.json"
    try:
        if not path.exists():
            return None
    except OSError as e:
        raise UserError(paths.describe_error(path, e)) from e
    shard_format = _shard_format()
    if shard_format is not None and hasattr(shard_format, "read_metadata"):
        return shard_format.read_metadata(data_dir)
    try:
        return json.loads(path.read_text())
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


def tensorflow_datasets():
    """TensorFlow Datasets (heavy: only for TFDS paths), with accelerators hidden from
    TensorFlow first, as `tensorflow` does."""
    tensorflow()
    import tensorflow_datasets as tfds

    return tfds


def process_units(files: list[str], process_index: int, process_count: int) -> list[Unit]:
    """The disjoint units of `process_index`: files round-robin; with fewer files than processes
    each file is split by document index into enough parts that every process gets one."""
    parts = -(-process_count // len(files)) if len(files) < process_count else 1
    units = [Unit(path, part, parts) for path in files for part in range(parts)]
    return units[process_index::process_count]


class UnitReader:
    """Windows of documents of one unit, from `start` on (a `Place`)."""

    def __init__(self, unit: Unit, start: Place, vocab_size: int):
        self._tf = tensorflow()
        self.unit = unit
        self.place = start  # where the next document to hand out is looked for
        self._vocab_size = vocab_size
        self._file = None
        self._records = None  # iterator over tfrecord.Record, opened at the first window
        self._parsed: collections.deque = collections.deque()  # (Place after, tokens, lengths)

    def next_window(self, token_budget: int) -> DocumentBlock | None:
        """Whole documents until `token_budget` tokens are reached (at least one); None at the
        end of the unit."""
        docs, total = [], 0
        while total < token_budget:
            if not self._parsed and not self._parse_more():
                break
            self.place, ids, lengths = self._parsed.popleft()
            docs.append((ids, lengths))
            total += len(ids)
        if not docs:
            self.close()
            return None
        return DocumentBlock.from_lengths(
            np.concatenate([d[0] for d in docs]),
            np.concatenate([d[1] for d in docs]),
            [len(d[1]) for d in docs],
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._records = None, None

    def _open(self):
        path, start = self.unit.path, self.place
        try:
            self._file = paths.path(path).open("rb")
        except OSError as e:
            raise UserError(paths.describe_error(path, e)) from e
        if start.offset is None:  # an old position: find the record by scanning
            records = tfrecord.read_records(self._file, path)
            return (r for r in records if r.index >= start.record)
        return tfrecord.read_records(self._file, path, start.offset, start.record)

    def _owned_records(self, count: int) -> list[tfrecord.Record]:
        """Up to `count` next records of this unit (every `parts`-th record of the file)."""
        if self._records is None:
            self._records = self._open()
        part, parts, out = self.unit.part, self.unit.parts, []
        try:
            for record in self._records:
                if record.index % parts == part:
                    out.append(record)
                    if len(out) == count:
                        break
        except OSError as e:
            raise UserError(paths.describe_error(self.unit.path, e)) from e
        return out

    def _parse_more(self) -> bool:
        records = self._owned_records(_PARSE_CHUNK)
        if not records:
            return False
        self._parsed.extend(self._parse(records))
        return True

    def _parse(self, records: list[tfrecord.Record]):
        tf = self._tf
        features = {
            "token_ids": tf.io.RaggedFeature(tf.int64),
            "sentence_lengths": tf.io.RaggedFeature(tf.int64),
        }
        indices = [r.index for r in records]
        try:
            parsed = tf.io.parse_example(tf.constant([r.data for r in records]), features)
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
                Place(r.index + 1, r.end),
                ids_values[ids_splits[i] : ids_splits[i + 1]],
                len_values[len_splits[i] : len_splits[i + 1]],
            )
            for i, r in enumerate(records)
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
