"""The shard record encoding parses as TensorFlow's own `tf.train.Example`, and metadata checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bert_jax.data import shards
from bert_jax.errors import UserError
from bert_jax.text.load import load_tokenizer

tf = pytest.importorskip("tensorflow")


def _reference_example(sentences: list[list[int]]) -> tf.train.Example:
    example = tf.train.Example()
    example.features.feature["token_ids"].int64_list.value.extend([t for s in sentences for t in s])
    example.features.feature["sentence_lengths"].int64_list.value.extend(map(len, sentences))
    return example


def test_encoded_documents_equal_tensorflow_examples():
    rng = np.random.default_rng(0)
    documents = []
    # Ids at every varint width (1..10 bytes), sentences from 1 to 3000 tokens.
    for bits in (1, 7, 8, 14, 15, 21, 22, 28, 35, 49, 56, 62, 63):
        for longest in (2, 30, 3000):
            count = int(rng.integers(1, 5))
            documents.append(
                [
                    [int(x) for x in rng.integers(0, 2**bits, size=rng.integers(1, longest))]
                    for _ in range(count)
                ]
            )
    records = shards.encode_documents(
        np.array([t for d in documents for s in d for t in s], np.int64),
        np.array([sum(map(len, d)) for d in documents]),
        np.array([len(s) for d in documents for s in d]),
        np.array([len(d) for d in documents]),
    )
    assert len(records) == len(documents)
    for document, record in zip(documents, records, strict=True):
        assert tf.train.Example.FromString(record) == _reference_example(document)
        parsed = tf.io.parse_single_example(
            record,
            {
                "token_ids": tf.io.VarLenFeature(tf.int64),
                "sentence_lengths": tf.io.VarLenFeature(tf.int64),
            },
        )
        assert parsed["token_ids"].values.numpy().tolist() == [t for s in document for t in s]


def test_encode_rejects_empty_documents_and_negative_ids():
    with pytest.raises(ValueError):
        shards.encode_documents(np.array([1]), np.array([1, 0]), np.array([1]), np.array([1, 0]))
    with pytest.raises(ValueError):
        shards.encode_documents(np.array([-1]), np.array([1]), np.array([1]), np.array([1]))
    assert shards.encode_documents(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)) == []


def test_shard_names():
    assert shards.shard_names("train", 2) == [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
    ]


def _vocab(path, words):
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    return load_tokenizer(path)


def test_metadata_round_trip_and_tokenizer_check(tmp_path):
    a = _vocab(tmp_path / "a.txt", ["a", "b"])
    b = _vocab(tmp_path / "b.txt", ["a", "b", "c"])
    metadata = {
        "format_version": shards.FORMAT_VERSION,
        "tokenizer": {
            "kind": a.kind,
            "path": a.path,
            "fingerprint": a.fingerprint,
            "vocab_size": a.vocab_size,
            "lowercase": a.lowercase,
        },
    }
    out = tmp_path / "data"
    out.mkdir()
    shards.write_metadata(str(out), metadata)
    assert [p.name for p in out.iterdir()] == ["metadata.json"]  # no temporary file left
    read = shards.read_metadata(str(out))
    assert read["directory"] == str(out)
    assert shards.read_metadata(str(out / "metadata.json"))["tokenizer"] == metadata["tokenizer"]
    shards.check_tokenizer(read, a)
    with pytest.raises(UserError) as error:
        shards.check_tokenizer(read, b)
    message = str(error.value)
    assert a.fingerprint[:12] in message and b.fingerprint[:12] in message
    assert "vocab_size 7" in message and "vocab_size 8" in message and str(out) in message
    assert "\n" not in message


def test_read_metadata_errors(tmp_path):
    with pytest.raises(UserError, match="metadata.json is missing"):
        shards.read_metadata(str(tmp_path))
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        shards.read_metadata(str(tmp_path))
    (tmp_path / "metadata.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(UserError, match="format_version 99"):
        shards.read_metadata(str(tmp_path))
