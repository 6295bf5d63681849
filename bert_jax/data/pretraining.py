"""Pretraining examples from documents: NSP sentence pairs (BERT), sentence-order pairs (ALBERT)
and full-sentence packing (RoBERTa), as fixed-length numpy arrays.

All documents of a block sit in one flat token buffer, so every segment is a contiguous range of
it. The sequential part of the original algorithm (grow a chunk of sentences up to a target
length, split it, maybe borrow B from another document) walks sentence offsets with `bisect` and
Python's `random.Random`, a few microseconds per example; building the token arrays and the
truncation are vectorised numpy over the whole block.

Differences from google-research/bert `create_instances_from_document`, all deliberate:
- the target length (short with probability short_seq_prob) is drawn for every chunk rather than
  once per document, so the share of short examples is short_seq_prob whatever the document
  lengths;
- truncation (trim the longer side, front or back at random, one token at a time; ties trim B)
  is computed in closed form: how many tokens each side loses follows from the lengths, and the
  number taken from the front is Binomial(n, 1/2), the same distribution as the original loop;
- "another document" for a random B is drawn from the block (the documents read together in one
  round), not from the whole corpus, uniformly among the block's other documents: it is never
  the document A comes from (the original makes 10 draws and can end on A's own document). A
  block of a single document has no other document, so its pairs are all IsNext and a chunk of
  a single sentence there makes no example.
SOP (ALBERT): A and B are consecutive parts of one chunk, swapped with probability 1/2 (label 1 =
swapped); a chunk grows to at least two sentences, and a document with a single sentence yields
nothing (ALBERT would pair it with a random B, which is an NSP signal, not an order signal).
"""

from __future__ import annotations

import bisect
import dataclasses
import random

import numpy as np

from bert_jax.data.pretrain_config import SpecialTokens


@dataclasses.dataclass(frozen=True)
class DocumentBlock:
    """Documents in one flat buffer. Sentence k is tokens[sentence_splits[k]:sentence_splits[k+1]];
    document d is sentences doc_splits[d]:doc_splits[d+1]. No empty sentences or documents."""

    tokens: np.ndarray  # int32 [T]
    sentence_splits: np.ndarray  # int64 [num_sentences + 1], starts at 0, ends at T
    doc_splits: np.ndarray  # int64 [num_docs + 1], starts at 0, ends at num_sentences

    @property
    def num_docs(self) -> int:
        return len(self.doc_splits) - 1

    @classmethod
    def from_lengths(cls, tokens, sentence_lengths, doc_sentence_counts) -> DocumentBlock:
        """From concatenated tokens, every sentence's length and every document's sentence count.
        Empty sentences and then empty documents are dropped."""
        sentence_lengths = np.asarray(sentence_lengths, dtype=np.int64)
        doc_of_sentence = np.repeat(np.arange(len(doc_sentence_counts)), doc_sentence_counts)
        keep = sentence_lengths > 0
        counts = np.bincount(doc_of_sentence[keep], minlength=len(doc_sentence_counts))
        counts = counts[counts > 0]
        return cls(
            tokens=np.asarray(tokens, dtype=np.int32),
            sentence_splits=np.concatenate([[0], np.cumsum(sentence_lengths[keep])]),
            doc_splits=np.concatenate([[0], np.cumsum(counts)]),
        )

    @classmethod
    def concatenate(cls, blocks: list[DocumentBlock]) -> DocumentBlock:
        token_offsets = np.cumsum([0] + [len(b.tokens) for b in blocks])
        sentence_offsets = np.cumsum([0] + [len(b.sentence_splits) - 1 for b in blocks])
        return cls(
            tokens=np.concatenate([b.tokens for b in blocks]),
            sentence_splits=np.concatenate(
                [[0]]
                + [b.sentence_splits[1:] + o for b, o in zip(blocks, token_offsets, strict=False)]
            ),
            doc_splits=np.concatenate(
                [[0]]
                + [b.doc_splits[1:] + o for b, o in zip(blocks, sentence_offsets, strict=False)]
            ),
        )


@dataclasses.dataclass(frozen=True)
class Spans:
    """Each example as ranges of a token buffer: A = buffer[a_start:a_start+a_length], likewise B
    (b_length 0: a single segment, no second [SEP])."""

    a_start: np.ndarray
    a_length: np.ndarray
    b_start: np.ndarray
    b_length: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


def create_examples(
    block: DocumentBlock,
    *,
    mode: str,
    max_seq_length: int,
    short_seq_prob: float,
    seed: int,
    tokens: SpecialTokens,
) -> dict[str, np.ndarray]:
    """Unmasked examples of a block: input_ids, segment_ids, input_mask [N, S] int32, nsp_label
    [N] int32, in document order. Deterministic in `seed`."""
    rng = random.Random(seed)
    if mode == "mlm_only":
        buffer, spans = _pack_full_sentences(block, max_seq_length - 2, tokens.sep_id)
    else:
        spans = _sentence_pairs(block, max_seq_length - 3, short_seq_prob, rng, sop=mode == "sop")
        spans = _truncate_pairs(
            spans, max_seq_length - 3, np.random.default_rng(rng.getrandbits(64))
        )
        buffer = block.tokens
    return _assemble(buffer, spans, max_seq_length, tokens)


def _sentence_pairs(
    block: DocumentBlock, max_num_tokens: int, short_seq_prob: float, rng: random.Random, sop: bool
) -> Spans:
    ends = block.sentence_splits.tolist()  # sentence k spans ends[k]:ends[k+1]
    docs = block.doc_splits.tolist()
    num_docs = len(docs) - 1
    uniform = rng.random  # ints as low + int(uniform() * count): randint is 5x slower
    a_start, a_end, b_start, b_end, label = [], [], [], [], []
    for doc in range(num_docs):
        first, stop = docs[doc], docs[doc + 1]
        chunk = first
        while chunk < stop:
            target = max_num_tokens
            if uniform() < short_seq_prob:
                target = 2 + int(uniform() * (max_num_tokens - 1))  # in [2, max_num_tokens]
            # The chunk is sentences chunk..end-1: the fewest that reach `target` tokens.
            end = bisect.bisect_left(ends, ends[chunk] + target, chunk + 1, stop)
            if sop:
                if stop - chunk < 2:
                    break
                end = max(end, chunk + 2)
            size = end - chunk
            if size == 1 and num_docs == 1 and not sop:
                chunk = end  # one sentence and no other document: no B of either kind
                continue
            split = chunk + (1 + int(uniform() * (size - 1)) if size >= 2 else 1)
            a_start.append(ends[chunk])
            a_end.append(ends[split])
            if sop:
                swap = uniform() < 0.5
                b_start.append(ends[split])
                b_end.append(ends[end])
                if swap:
                    a_start[-1], b_start[-1] = b_start[-1], a_start[-1]
                    a_end[-1], b_end[-1] = b_end[-1], a_end[-1]
                label.append(int(swap))
                chunk = end
            elif num_docs > 1 and (size == 1 or uniform() < 0.5):
                other = int(uniform() * (num_docs - 1))  # any document but this one
                other += other >= doc
                start = docs[other] + int(uniform() * (docs[other + 1] - docs[other]))
                wanted = target - (ends[split] - ends[chunk])
                other_end = bisect.bisect_left(
                    ends, ends[start] + wanted, start + 1, docs[other + 1]
                )
                b_start.append(ends[start])
                b_end.append(ends[other_end])
                label.append(1)
                chunk = split  # the unused sentences of this chunk are put back
            else:
                b_start.append(ends[split])
                b_end.append(ends[end])
                label.append(0)
                chunk = end
    a_start, b_start = np.array(a_start, np.int64), np.array(b_start, np.int64)
    return Spans(
        a_start=a_start,
        a_length=np.array(a_end, np.int64) - a_start,
        b_start=b_start,
        b_length=np.array(b_end, np.int64) - b_start,
        label=np.array(label, np.int32),
    )


def _truncate_pairs(spans: Spans, max_num_tokens: int, rng: np.random.Generator) -> Spans:
    """The original `truncate_seq_pair` in closed form: trim the longer side (B on ties) one token
    at a time, each from the front or the back with probability 1/2."""
    a, b = spans.a_length, spans.b_length
    excess = np.maximum(a + b - max_num_tokens, 0)
    uneven = np.minimum(excess, np.abs(a - b))  # trimmed from the longer side until equal
    rest = excess - uneven  # then alternately, B first
    cut_a = np.where(a > b, uneven, 0) + rest // 2
    cut_b = np.where(b > a, uneven, 0) + rest - rest // 2
    front_a = rng.binomial(cut_a, 0.5)
    front_b = rng.binomial(cut_b, 0.5)
    return dataclasses.replace(
        spans,
        a_start=spans.a_start + front_a,
        a_length=a - cut_a,
        b_start=spans.b_start + front_b,
        b_length=b - cut_b,
    )


def _pack_full_sentences(
    block: DocumentBlock, max_tokens: int, sep_id: int
) -> tuple[np.ndarray, Spans]:
    """RoBERTa FULL-SENTENCES: whole sentences in order, packed up to `max_tokens`, crossing
    document boundaries with a [SEP] between documents; a longer sentence is cut into pieces."""
    doc_token_starts = block.sentence_splits[block.doc_splits[1:-1]]
    buffer = np.insert(block.tokens, doc_token_starts, sep_id)
    ends = block.sentence_splits.tolist()
    docs = block.doc_splits.tolist()
    starts, lengths = [], []
    length = 0
    start = 0
    for doc in range(len(docs) - 1):
        shift = doc  # [SEP]s inserted before this document
        for sentence in range(docs[doc], docs[doc + 1]):
            begin, size = ends[sentence] + shift, ends[sentence + 1] - ends[sentence]
            joint = 1 if (length and sentence == docs[doc]) else 0
            if length and length + joint + size > max_tokens:
                starts.append(start)
                lengths.append(length)
                length = 0
            if not length:
                start, joint = begin, 0
                while size > max_tokens:
                    starts.append(begin)
                    lengths.append(max_tokens)
                    begin, size = begin + max_tokens, size - max_tokens
                start = begin
            length += joint + size
    if length:
        starts.append(start)
        lengths.append(length)
    zeros = np.zeros(len(starts), np.int64)
    spans = Spans(
        a_start=np.array(starts, np.int64),
        a_length=np.array(lengths, np.int64),
        b_start=zeros,
        b_length=zeros,
        label=np.zeros(len(starts), np.int32),
    )
    return buffer, spans


def _assemble(
    buffer: np.ndarray, spans: Spans, max_seq_length: int, tokens: SpecialTokens
) -> dict[str, np.ndarray]:
    """[CLS] A [SEP] (B [SEP]) [PAD]... as arrays, for all examples at once."""
    position = np.arange(max_seq_length)[None, :]
    a_len = spans.a_length[:, None]
    b_len = spans.b_length[:, None]
    in_a = (position >= 1) & (position <= a_len)
    b_first = a_len + 2
    in_b = (position >= b_first) & (position < b_first + b_len)
    last = np.where(b_len > 0, b_first + b_len, a_len + 1)  # index of the final [SEP]
    source = np.where(
        in_a, spans.a_start[:, None] + position - 1, spans.b_start[:, None] + position - b_first
    )
    content = buffer[np.clip(source, 0, len(buffer) - 1)]
    is_sep = (position == a_len + 1) | (position == last)
    input_ids = np.where(in_a | in_b, content, np.where(is_sep, tokens.sep_id, tokens.pad_id))
    input_ids[:, 0] = tokens.cls_id
    input_mask = position <= last
    segment_ids = (position >= b_first) & (position <= last) & (b_len > 0)
    return {
        "input_ids": input_ids.astype(np.int32),
        "segment_ids": segment_ids.astype(np.int32),
        "input_mask": input_mask.astype(np.int32),
        "nsp_label": spans.label.astype(np.int32),
    }
