"""Part of `bert-jax bench checkpoint`: how long the input pipeline takes to resume, from
reopening the training stream at a saved data position to its first batch, early and deep into
one large shard. With byte offsets in the position the reader seeks straight there, so the time
must not grow with the position; a position saved without them (as before offsets were
recorded) scans the shard's records from its start, which is timed alongside for comparison.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

from bert_jax.bench.data import VOCAB_SIZE, synthetic_records

BYTES_PER_DOCUMENT = 2_000  # about, for synthetic_records


def write_large_shard(directory: str, megabytes: float) -> list[tuple[int, int]]:
    """One train shard of about `megabytes` of synthetic documents; (record index, byte offset)
    of each record."""
    from bert_jax import paths
    from bert_jax.data import shards, tfrecord

    starts, offset = [], 0

    def records():
        nonlocal offset
        for index, record in enumerate(
            synthetic_records(int(megabytes * 1e6 / BYTES_PER_DOCUMENT))
        ):
            starts.append((index, offset))
            offset += len(record) + tfrecord.FRAMING_BYTES
            yield record

    tfrecord.write_file(paths.path(directory) / shards.shard_name("train", 0, 1), records())
    return starts


def _state_at(fresh: dict, index: int, offset: int | None) -> dict:
    """A saved position at the start of a round whose shard reader was at record `index`
    (byte `offset`; None: a position saved without byte offsets)."""
    state = {**fresh, "round": 1, "example": 0, "step": 100, "offsets": [index]}
    if offset is None:
        state.pop("byte_offsets", None)
    else:
        state["byte_offsets"] = [offset]
    return state


def resume_times(
    megabytes: float,
    fractions: list[float],
    batch_size: int = 256,
    repeats: int = 3,
    shuffle_buffer: int | None = None,
) -> tuple[list, dict]:
    """Rows and figures: seconds from reopening the stream to its first batch, at each fraction
    of the shard, seeking (byte offsets saved) and scanning (none saved). The data config is the
    default one (seq 128, shuffle_buffer 10,000: a round reads 320k tokens) unless
    `shuffle_buffer` is given."""
    import tempfile

    from bert_jax.data.pipeline import train_batches
    from bert_jax.data.pretrain_config import PretrainDataConfig, SpecialTokens

    tokens = SpecialTokens(VOCAB_SIZE, cls_id=101, sep_id=102, pad_id=0, mask_id=103)
    rows, figures = [], {"data_shard_mb": None, "data_resume": []}
    with tempfile.TemporaryDirectory(prefix="bert-jax-bench-resume-") as directory:
        starts = write_large_shard(directory, megabytes)
        size = os.path.getsize(os.path.join(directory, os.listdir(directory)[0]))
        figures["data_shard_mb"] = round(size / 1e6, 1)
        config = PretrainDataConfig(data_dir=directory)
        if shuffle_buffer is not None:
            config = dataclasses.replace(config, shuffle_buffer=shuffle_buffer)
        fresh = train_batches(config, tokens, batch_size, process_index=0, process_count=1)
        base = fresh.state()
        fresh.close()

        def first_batch_s(state: dict) -> float:
            start = time.perf_counter()
            stream = train_batches(
                config, tokens, batch_size, process_index=0, process_count=1, state=state
            )
            next(stream)
            seconds = time.perf_counter() - start
            stream.close()
            return seconds

        first_batch_s(_state_at(base, 0, 0))  # warm-up: TensorFlow's first tracing
        for fraction in fractions:
            index, offset = starts[min(len(starts) - 1, int(fraction * len(starts)))]
            seek = statistics.median(
                first_batch_s(_state_at(base, index, offset)) for _ in range(repeats)
            )
            scan = first_batch_s(_state_at(base, index, None))
            figures["data_resume"].append(
                {
                    "fraction": fraction,
                    "byte_offset": offset,
                    "record": index,
                    "seek_s": round(seek, 3),
                    "scan_s": round(scan, 3),
                }
            )
            rows.append(
                (
                    f"data resume at {fraction:.0%} ({offset / 1e6:,.0f} MB)",
                    f"{seek:.2f} s to the first batch (scanning from the start: {scan:.2f} s)",
                )
            )
    rows.insert(0, ("data shard for resume", f"{size / 1e6:,.0f} MB, batch {batch_size} x 128"))
    return rows, figures
