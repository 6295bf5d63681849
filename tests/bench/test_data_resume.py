"""`bench checkpoint`'s data-resume part on a small shard: positions land on record boundaries and
both ways of resuming (seek, scan) reach a first batch."""

from bert_jax.bench import data_resume
from bert_jax.data import tfrecord


def test_write_large_shard_offsets_are_record_boundaries(tmp_path):
    starts = data_resume.write_large_shard(str(tmp_path), 0.2)
    (path,) = tmp_path.iterdir()
    with tfrecord.open_records(path) as records:
        read = [(r.index, r.start) for r in records]
    assert read == starts and len(starts) == 100


def test_resume_times_at_two_positions():
    rows, figures = data_resume.resume_times(
        1, [0.01, 0.9], batch_size=8, repeats=1, shuffle_buffer=64
    )
    early, deep = figures["data_resume"]
    assert early["byte_offset"] < deep["byte_offset"] < figures["data_shard_mb"] * 1e6
    assert all(f["seek_s"] > 0 and f["scan_s"] > 0 for f in (early, deep))
    assert rows[1][0].startswith("data resume at 1%")
