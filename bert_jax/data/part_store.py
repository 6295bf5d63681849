"""Step 1 of `prepare`: tokenize the corpus's parts on a pool of workers and save each part.

A saved part is two files in the work directory:
  part-<part_bytes>b-<index>.records  its serialized records back to back, in key order
  part-<part_bytes>b-<index>.npz      keys, sentence and token counts, byte offsets, counters
The .npz is renamed into place last, so its presence means the part is complete; a re-run skips
such parts. The part size is in the names because part indices only mean something for one size.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os

import numpy as np

from bert_jax import paths, progress
from bert_jax.data import corpus_readers

MIN_PART_BYTES = 1 << 20
MAX_PART_BYTES = 16 << 20  # a worker holds a part's ids as Python ints: ~10x its text size


def auto_part_bytes(total_bytes: int) -> int:
    """About 256 parts, from 1 to 16 MiB each: enough to keep every core busy, few enough to
    keep step 2's reads (a few per part) cheap on remote storage."""
    return int(min(MAX_PART_BYTES, max(MIN_PART_BYTES, total_bytes // 256)))


def _stem(work: str, part_bytes: int, index: int) -> str:
    return os.fspath(paths.path(work) / f"part-{part_bytes}b-{index:06d}")


def saved_parts(work: str, part_bytes: int) -> list[int]:
    prefix = _stem(work, part_bytes, 0)[: -len("000000")]
    return sorted(int(p[len(prefix) : -len(".npz")]) for p in paths.glob(prefix + "*.npz"))


def _save(work: str, part_bytes: int, result) -> None:
    stem = _stem(work, part_bytes, result.index)
    lengths = np.fromiter(map(len, result.records), np.int64, len(result.records))
    paths.write_atomic(stem + ".records", b"".join(result.records))
    buffer = io.BytesIO()
    np.savez(
        buffer,
        keys=result.keys,
        sentences=result.sentences,
        tokens=result.tokens,
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        stats=np.array(json.dumps(result.stats)),
    )
    paths.write_atomic(stem + ".npz", buffer.getvalue())


@dataclasses.dataclass
class SavedPart:
    records_path: str
    keys: np.ndarray
    sentences: np.ndarray
    tokens: np.ndarray
    offsets: np.ndarray  # [documents + 1] byte offsets of the records in `records_path`
    stats: dict


def load_parts(work: str, part_bytes: int) -> list[SavedPart]:
    parts = []
    for index in saved_parts(work, part_bytes):
        stem = _stem(work, part_bytes, index)
        arrays = np.load(io.BytesIO(paths.path(stem + ".npz").read_bytes()))
        parts.append(
            SavedPart(
                records_path=stem + ".records",
                keys=arrays["keys"],
                sentences=arrays["sentences"],
                tokens=arrays["tokens"],
                offsets=arrays["offsets"],
                stats=json.loads(str(arrays["stats"])),
            )
        )
    return parts


def tokenize_parts(
    options, sources, tokenizer_path: str, work: str, part_bytes: int, workers: int, threads: bool
) -> None:
    """Tokenize and save every part of the corpus that is not saved yet."""
    import multiprocessing

    from bert_jax.data import part_tokenizer

    init_args = (options.corpus, tokenizer_path, options.lowercase, options.seed, threads)
    total = sum(s.nbytes for s in sources)
    bar = progress.bar(
        total=total, desc="tokenize", unit="B", unit_scale=True, progress=options.progress
    )
    saved = set(saved_parts(work, part_bytes))
    parts = corpus_readers.iter_parts(options.corpus, sources, part_bytes)

    def save(result: part_tokenizer.PartResult) -> None:
        _save(work, part_bytes, result)
        bar.update(result.stats["input_bytes"])

    if workers == 1:
        with part_tokenizer.tokenizer_threads(threads):
            tokenize = part_tokenizer.PartTokenizer(*init_args[:4])
            for part in parts:
                if part.index in saved:
                    bar.update(part.nbytes)
                else:
                    save(tokenize(part))
        bar.close()
        return
    # spawn, not fork: this process may hold threads (gcsfs's event loop, TensorFlow's for TFDS).
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, part_tokenizer.init_worker, init_args) as pool:
        pending = []
        for part in parts:
            if part.index in saved:
                bar.update(part.nbytes)
                continue
            pending.append(pool.apply_async(part_tokenizer.run_worker, (part,)))
            # Bound the parts in flight, so the corpus is read only as fast as it is used.
            while len(pending) >= 2 * workers:
                save(pending.pop(0).get())
        for result in pending:
            save(result.get())
    bar.close()
