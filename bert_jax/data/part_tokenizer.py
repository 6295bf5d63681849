"""The worker side of `prepare`: one part of the corpus -> serialized documents, ordered by key.

Each document gets a 64-bit key, a keyed BLAKE2b hash of its sentences and the seed. Keys decide
everything downstream (eval split, shard, order inside a shard), so the output depends only on the
documents, the tokenizer and the seed: not on how the corpus was cut into parts, nor on the number
of workers. Identical documents get identical keys and records, so they land side by side in one
split (a repeated document cannot leak from train into eval).

This module never imports TensorFlow, so worker processes start fast and stay small.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import os

import numpy as np

from bert_jax.data.corpus_readers import CorpusSpec, Part
from bert_jax.data.documents import DocumentReader
from bert_jax.data.shards import encode_documents


@dataclasses.dataclass
class PartResult:
    index: int
    records: list[bytes]  # serialized tf.train.Example, in key order
    keys: np.ndarray  # uint64, ascending
    sentences: np.ndarray  # int64 per record
    tokens: np.ndarray  # int64 per record
    stats: dict  # counts: input_bytes, documents_read, dropped_empty_documents, ...


def document_key(seed: int, sentences: list[str]) -> int:
    digest = hashlib.blake2b(
        "\n".join(sentences).encode("utf-8", "surrogatepass"),
        digest_size=8,
        key=seed.to_bytes(8, "little", signed=True),
    ).digest()
    return int.from_bytes(digest, "little")


class PartTokenizer:
    """Holds the tokenizer and reader for one process; `__call__` handles one part."""

    def __init__(self, spec: CorpusSpec, tokenizer_path: str, lowercase: bool | None, seed: int):
        from bert_jax.text.load import load_tokenizer

        self.spec, self.seed = spec, seed
        self.tokenizer = load_tokenizer(tokenizer_path, lowercase=lowercase)

    def __call__(self, part: Part) -> PartResult:
        reader = DocumentReader(self.spec)
        documents = [d for seg in part.segments for d in reader.documents(seg)]
        keys = np.fromiter(
            (document_key(self.seed, d) for d in documents), np.uint64, len(documents)
        )
        per_doc = np.fromiter(map(len, documents), np.int64, len(documents))
        # Corpus text is text: a literal "[SEP]" in it is "[", "sep", "]", never the [SEP] id.
        ids = self.tokenizer.encode_batch(
            [s for d in documents for s in d], split_special_tokens=True
        )
        lengths = np.fromiter(map(len, ids), np.int64, len(ids))
        token_ids = np.fromiter(itertools.chain.from_iterable(ids), np.int64, int(lengths.sum()))
        doc_of_sentence = np.repeat(np.arange(len(documents)), per_doc)
        nonempty = lengths > 0  # a sentence of only control characters has no tokens
        doc_tokens = np.bincount(doc_of_sentence, lengths, len(documents)).astype(np.int64)
        doc_sentences = np.bincount(doc_of_sentence[nonempty], minlength=len(documents))
        keep = doc_tokens > 0
        records = encode_documents(
            token_ids, doc_tokens[keep], lengths[nonempty], doc_sentences[keep]
        )
        order = np.argsort(keys[keep], kind="stable")
        kept_sentences = doc_sentences[keep][order]
        stats = {
            "input_bytes": part.nbytes,
            "documents_read": len(documents),
            "dropped_empty_documents": int((~keep).sum()),
            "single_sentence_documents": int((kept_sentences == 1).sum()),
            "invalid_utf8_replacements": reader.replacements,
        }
        return PartResult(
            index=part.index,
            records=[records[i] for i in order],
            keys=keys[keep][order],
            sentences=kept_sentences.astype(np.int64),
            tokens=doc_tokens[keep][order],
            stats=stats,
        )


@contextlib.contextmanager
def tokenizer_threads(enabled: bool):
    """TOKENIZERS_PARALLELISM for the block: read at each call by Hugging Face `tokenizers`
    and by the SentencePiece tokenizer, it decides whether a batch uses a thread per core."""
    old = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if enabled else "false"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TOKENIZERS_PARALLELISM"]
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = old


# Per-process state of pool workers (set once by `init_worker`).
_WORKER: PartTokenizer | None = None


def init_worker(spec, tokenizer_path, lowercase, seed, threads: bool) -> None:
    global _WORKER
    # Usually off: each worker process already has a core of its own.
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads else "false"
    _WORKER = PartTokenizer(spec, tokenizer_path, lowercase, seed)


def run_worker(part: Part) -> PartResult:
    assert _WORKER is not None, "init_worker was not called in this process"
    return _WORKER(part)
