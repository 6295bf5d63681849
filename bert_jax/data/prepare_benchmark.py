"""Throughput of `prepare` beside tokenizers alone on the same sentences: the `tokenizers`
library's `encode_batch_fast` and Hugging Face's `BertTokenizerFast` (`bench tokenize`'s peers).

`prepare` reads, decodes, splits sentences, hashes, tokenizes, serializes and writes shards; the
references only tokenize the very sentences `prepare` found (loading excluded). All run on one
core (TOKENIZERS_PARALLELISM=false, one worker) so the per-core rates compare directly.
`all_cores` adds the two ways `prepare` can use every core: a worker process per core, or one
process whose tokenizer runs a thread per core.
"""

from __future__ import annotations

import os
import tempfile
import time

from bert_jax.data.corpus_readers import CorpusSpec, iter_parts, list_sources
from bert_jax.data.documents import DocumentReader
from bert_jax.data.part_tokenizer import tokenizer_threads
from bert_jax.data.prepare import PrepareOptions, prepare


def _sentences(spec: CorpusSpec) -> list[str]:
    reader = DocumentReader(spec)
    return [
        sentence
        for part in iter_parts(spec, list_sources(spec))
        for segment in part.segments
        for document in reader.documents(segment)
        for sentence in document
    ]


def _time_prepare(spec: CorpusSpec, vocab: str, lowercase, workers: int, threads: bool) -> float:
    with tempfile.TemporaryDirectory() as output:
        options = PrepareOptions(
            corpus=spec,
            output=output,
            vocab=vocab,
            lowercase=lowercase,
            num_shards=4,
            workers=workers,
            tokenizer_threads=threads,
            progress=False,
        )
        started = time.perf_counter()
        prepare(options)
        return time.perf_counter() - started


def _time_references(sentences: list[str], vocab: str, lowercase: bool) -> dict[str, float]:
    """Seconds each peer of `bench tokenize` takes to encode `sentences` on one core (the
    tokenizers library's encode_batch_fast, and BertTokenizerFast where installed)."""
    from bert_jax.bench.tokenize import peer_encoders

    seconds = {}
    with tokenizer_threads(False):
        for name, encode in peer_encoders(vocab, lowercase).items():
            started = time.perf_counter()
            encode(sentences)
            seconds[name] = time.perf_counter() - started
    return seconds


def prepare_benchmark(
    corpus: str,
    vocab: str,
    *,
    format: str = "prose",
    prose_documents: str = "paragraph",
    lowercase: bool | None = None,
    repeats: int = 3,
    all_cores: bool = True,
) -> dict:
    """MB/s of input per core for `prepare`, for `BertTokenizerFast` (`reference_*`, None if not
    installed) and for each tokenizer-only peer (`references_mb_per_s_per_core`).

    The two alternate `repeats` times and the fastest run of each counts, which keeps the
    comparison fair on a machine that other work slows down now and then.
    """
    import tensorflow as tf  # noqa: F401  (imported before timing: its start-up is not the work)

    spec = CorpusSpec(
        format=format, inputs=tuple(corpus.split(",")), prose_documents=prose_documents
    )
    mb = sum(s.nbytes for s in list_sources(spec)) / 1e6
    sentences = _sentences(spec)
    ours, references = [], {}
    for _ in range(repeats):
        for name, took in _time_references(sentences, vocab, lowercase is not False).items():
            references[name] = min(took, references.get(name, took))
        ours.append(_time_prepare(spec, vocab, lowercase, workers=1, threads=False))
    seconds = min(ours)
    reference_seconds = references.get("BertTokenizerFast")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    figures = {
        "input_mb": mb,
        "sentences": len(sentences),
        "cores": cores,
        "prepare_seconds_1_core": seconds,
        "prepare_mb_per_s_per_core": mb / seconds,
        "reference_seconds_1_core": reference_seconds,
        "reference_mb_per_s_per_core": mb / reference_seconds if reference_seconds else None,
        "references_mb_per_s_per_core": {name: mb / took for name, took in references.items()},
    }
    if all_cores and cores and cores > 1:
        # A worker process per core (whose tokenizers run single-threaded), against one process
        # whose tokenizer uses a thread per core.
        processes = min(_time_prepare(spec, vocab, lowercase, cores, False) for _ in range(repeats))
        threads = min(_time_prepare(spec, vocab, lowercase, 1, True) for _ in range(repeats))
        figures["prepare_mb_per_s_all_cores_processes"] = mb / processes
        figures["prepare_mb_per_s_all_cores_threads"] = mb / threads
    return figures
