"""The pretraining shard format: one TFRecord record per document, plus `metadata.json`.

A record is a serialized `tf.train.Example` with two int64 features:
  token_ids         every sentence's token ids concatenated, no special tokens
  sentence_lengths  tokens per sentence, in order; all > 0 and summing to len(token_ids)

The Example bytes are encoded here with numpy instead of TensorFlow's protobuf classes, so the
tokenizing worker processes never import TensorFlow (seconds of start-up and hundreds of MB each).
The wire format is the one `tf.train.Example` parses (tests check it with TensorFlow itself):

  Example   { 1: Features }                Features { 1: repeated MapEntry }
  MapEntry  { 1: key string, 2: Feature }  Feature  { 3: Int64List }
  Int64List { 1: packed varints }

`metadata.json` is written last, through a temporary name, so its presence means "complete".
"""

from __future__ import annotations

import json
import os

import numpy as np

from bert_jax import paths
from bert_jax.errors import UserError

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
SPLITS = ("train", "eval")


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_names(split: str, count: int) -> list[str]:
    return [shard_name(split, i, count) for i in range(count)]


# ---------------------------------------------------------------------------------------------
# tf.train.Example encoding


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints of non-negative ints: (all bytes concatenated, bytes used per value)."""
    values = np.asarray(values)
    if values.size and int(values.min()) < 0:
        raise ValueError("token ids and lengths must be non-negative")
    top = int(values.max(initial=0))
    v = values.astype(np.uint32 if top < (1 << 32) else np.uint64)
    # Write every value as `width` 7-bit groups (low first, continuation bit on all but the last
    # used group), then keep the used groups: a row-major boolean mask preserves the order.
    width = max(1, (top.bit_length() + 6) // 7)
    nbytes = np.ones(v.shape, dtype=np.int64)
    for k in range(1, width):
        nbytes += v >= (1 << (7 * k))
    groups = np.empty((len(v), width), dtype=np.uint8)
    for k in range(width):
        groups[:, k] = (v >> (7 * k)) & 0x7F
        if k + 1 < width:
            groups[:, k] |= (nbytes > k + 1).astype(np.uint8) << 7
    return groups[np.arange(width) < nbytes[:, None]], nbytes


# Varints of small numbers, looked up instead of computed: one record needs about a dozen.
_SMALL_VARINTS = [_varint(n) for n in range(1 << 14)]


def _vl(n: int) -> bytes:
    return _SMALL_VARINTS[n] if n < (1 << 14) else _varint(n)


def _int64_feature_entry(key: bytes, packed: bytes) -> bytes:
    """Features.feature map entry {key: Feature{int64_list: Int64List{value: packed}}}."""
    int64_list = len(packed) + 1 + len(_vl(len(packed)))
    feature = int64_list + 1 + len(_vl(int64_list))
    entry = 2 + len(key) + feature + 1 + len(_vl(feature))
    return b"".join(
        (
            b"\x0a", _vl(entry),  # Features.feature (map entry)
            b"\x0a", _vl(len(key)), key,  # MapEntry.key
            b"\x12", _vl(feature),  # MapEntry.value: Feature
            b"\x1a", _vl(int64_list),  # Feature.int64_list
            b"\x0a", _vl(len(packed)), packed,  # Int64List.value, packed
        )
    )  # fmt: skip


def encode_documents(
    token_ids: np.ndarray,
    doc_tokens: np.ndarray,
    sentence_lengths: np.ndarray,
    doc_sentences: np.ndarray,
) -> list[bytes]:
    """Serialized Examples for many documents at once, given flat arrays.

    `token_ids` holds every document's tokens back to back (`doc_tokens[i]` of them for document
    i); `sentence_lengths` likewise holds every document's sentence lengths (`doc_sentences[i]`).
    Varints are computed for the whole batch in one vectorized pass.
    """
    if len(doc_tokens) == 0:
        return []
    tok_bytes, tok_n = _varints(token_ids)
    len_bytes, len_n = _varints(sentence_lengths)
    tok_bounds = np.concatenate([[0], np.cumsum(np.add.reduceat(tok_n, _starts(doc_tokens)))])
    len_bounds = np.concatenate([[0], np.cumsum(np.add.reduceat(len_n, _starts(doc_sentences)))])
    tok_raw, len_raw = tok_bytes.tobytes(), len_bytes.tobytes()
    records = []
    for i in range(len(doc_tokens)):
        features = _int64_feature_entry(
            b"token_ids", tok_raw[tok_bounds[i] : tok_bounds[i + 1]]
        ) + _int64_feature_entry(b"sentence_lengths", len_raw[len_bounds[i] : len_bounds[i + 1]])
        records.append(b"\x0a" + _vl(len(features)) + features)  # Example.features
    return records


def _starts(counts: np.ndarray) -> np.ndarray:
    if len(counts) and int(np.min(counts)) <= 0:
        raise ValueError("every document needs at least one token and one sentence")
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# metadata.json


def write_metadata(directory: str, metadata: dict) -> None:
    """Write `metadata.json` through a temporary name, so a reader never sees half of it."""
    target = paths.path(directory) / METADATA_FILE
    try:
        paths.write_atomic(target, json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    except OSError as e:
        raise UserError(paths.describe_error(target, e)) from e


def read_metadata(path: str) -> dict:
    """The metadata of a prepared dataset directory (or of its `metadata.json`).

    The returned dict also carries `directory`, the dataset directory it was read from.
    """
    path = os.fspath(path)
    directory = path[: -len(METADATA_FILE)].rstrip("/") if path.endswith(METADATA_FILE) else path
    file = paths.path(directory) / METADATA_FILE
    try:
        if not file.exists():
            raise UserError(
                f"{directory} is not a complete prepared dataset: {METADATA_FILE} is missing "
                "(run `bert-jax prepare` to make or finish it)"
            )
        text = file.read_text()
    except OSError as e:
        raise UserError(paths.describe_error(file, e)) from e
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{file} is not valid JSON: {e}") from None
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise UserError(
            f"{file} has format_version {version!r}; this bert-jax reads version {FORMAT_VERSION}"
        )
    metadata["directory"] = directory
    return metadata


def check_tokenizer(metadata: dict, tokenizer, what: str = "the config's vocab") -> None:
    """Raise UserError unless `tokenizer` has the vocabulary the shards were made with."""
    made = metadata["tokenizer"]
    if made["fingerprint"] == tokenizer.fingerprint:
        return
    where = metadata.get("directory", "the dataset")
    raise UserError(
        f"shards in {where} were made with vocab fingerprint {made['fingerprint'][:12]}.. "
        f"(vocab_size {made['vocab_size']}, {made['path']}), {what} has "
        f"{tokenizer.fingerprint[:12]}.. (vocab_size {tokenizer.vocab_size})"
    )
