"""The project's TFRecord framing against TensorFlow's own reader and writer, corrupted and
truncated files, reading from a byte offset, and gs:// through the emulator."""

from __future__ import annotations

import os

import pytest

from bert_jax import paths
from bert_jax.data import tfrecord
from bert_jax.errors import UserError

pytest_plugins = ["tests.gcs"]
tf = pytest.importorskip("tensorflow")

RECORDS = [b"", b"a", b"hello world", bytes(range(256)) * 300, b"\x00" * 70_000]


def _read_all(path, start=0, index=0):
    with tfrecord.open_records(path, start, index) as records:
        return list(records)


def test_tensorflow_reads_what_we_write(tmp_path):
    path = str(tmp_path / "ours.tfrecord")
    tfrecord.write_file(path, RECORDS)
    assert list(tf.data.TFRecordDataset(path).as_numpy_iterator()) == RECORDS
    assert os.listdir(tmp_path) == ["ours.tfrecord"]  # no temporary file left behind


def test_we_read_what_tensorflow_writes(tmp_path):
    path = str(tmp_path / "theirs.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in RECORDS:
            writer.write(record)
    records = _read_all(path)
    assert [r.data for r in records] == RECORDS
    assert [r.index for r in records] == list(range(len(RECORDS)))
    assert records[0].start == 0 and records[-1].end == os.path.getsize(path)
    assert all(a.end == b.start for a, b in zip(records, records[1:], strict=False))
    # From any record boundary on, with its index.
    third = records[2]
    assert [r.data for r in _read_all(path, third.start, third.index)] == RECORDS[2:]
    assert _read_all(path, third.start, third.index)[0].index == 2


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data, at: data[:at] + b"\xff" + data[at + 1 :], "length checksum mismatch"),
        (lambda data, at: data[: at + 20] + b"\xff" + data[at + 21 :], "data checksum mismatch"),
        (lambda data, at: data[: at + 5], "truncated header"),
        (lambda data, at: data[: at + 20], "truncated: 11 data bytes announced"),
    ],
)
def test_damage_is_a_user_error_naming_file_and_offset(tmp_path, damage, message):
    path = tmp_path / "bad.tfrecord"
    tfrecord.write_file(str(path), RECORDS[:3])
    at = len(tfrecord.frame(RECORDS[0])) + len(tfrecord.frame(RECORDS[1]))  # record 2
    path.write_bytes(damage(path.read_bytes(), at))
    with pytest.raises(UserError, match=message) as error:
        _read_all(str(path))
    assert f"{path}: corrupted TFRecord at byte {at} (record 2)" in str(error.value)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot access .*nothing.tfrecord"):
        _read_all(str(tmp_path / "nothing.tfrecord"))


def test_gcs_round_trip_with_seek(gcs_bucket):
    path = f"{gcs_bucket}/shards/train-00000-of-00001.tfrecord"
    tfrecord.write_file(path, RECORDS)
    assert paths.glob(f"{gcs_bucket}/shards/*") == [path]
    records = _read_all(path)
    assert [r.data for r in records] == RECORDS
    assert [r.data for r in _read_all(path, records[3].start, 3)] == RECORDS[3:]
