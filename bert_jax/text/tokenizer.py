"""One tokenizer interface for BERT's WordPiece vocabs and SentencePiece models.

`bert_jax.text.load.load_tokenizer(path)` picks the implementation from the file: a `vocab.txt` (or
a directory holding one) is WordPiece (`bert_jax.text.wordpiece`), a `*.model` file is SentencePiece
(`bert_jax.text.sentencepiece`, which also trains models with the BERT special tokens). Both build
model inputs the same way here: `[CLS] a [SEP] (b [SEP])`, segment ids, word ids, and the pair
truncation of the original BERT code. Files are read through `bert_jax.paths`, so a vocab on gs://
loads like a local one.

Special-token strings written in text ("[SEP]", "[MASK]") are recognised as those tokens by
`encode`/`encode_batch`, as Hugging Face tokenizers do for their input; corpus text for pretraining
is encoded with `split_special_tokens=True`, which reads them as ordinary text ("[", "sep", "]"),
as Google's create_pretraining_data.py does, so a corpus cannot inject [SEP] or [MASK] ids.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import os

import numpy as np

from bert_jax import paths
from bert_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Encoded:
    input_ids: list[int]  # with [CLS]/[SEP] when built by encode_example
    segment_ids: list[int]
    word_ids: list[int | None]  # index of the source word per token, None for special tokens


class Tokenizer(abc.ABC):
    """What the data pipelines code against. Subclasses set the attributes in `__init__`."""

    kind: str  # "wordpiece" | "sentencepiece"
    path: str  # the vocab or model file
    vocab_size: int
    lowercase: bool
    pad_id: int
    unk_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    fingerprint: str  # see `file_fingerprint`

    @abc.abstractmethod
    def tokenize(self, text: str) -> list[str]:
        """The vocab entries for `text` (what `id_to_token` gives for each id of `encode`)."""

    @abc.abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""

    @abc.abstractmethod
    def encode_batch(self, texts: list[str], split_special_tokens: bool = False) -> list[list[int]]:
        """`encode` for many texts at once, in parallel threads. With `split_special_tokens`,
        special-token strings in the texts are ordinary text, never special ids."""

    @abc.abstractmethod
    def encode_batch_with_offsets(
        self, texts: list[str], split_special_tokens: bool = False
    ) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """`encode_batch`'s ids of each text with, per token, its (start, end) character offsets
        into that text (end exclusive): `text[start:end]` is the text the token was read from,
        without the whitespace around it, so answers map back to the original text exactly."""

    @abc.abstractmethod
    def encode_with_word_ids(self, text: str) -> tuple[list[int], list[int]]:
        """Token ids of `text` and, per token, the index of the word it comes from.

        WordPiece words are BERT's basic tokens (punctuation marks are words of their own), as
        in Hugging Face's `word_ids()`; SentencePiece words are whitespace-separated.
        """

    @abc.abstractmethod
    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Readable text for `ids` (lowercased and without accents for uncased WordPiece)."""

    @abc.abstractmethod
    def id_to_token(self, i: int) -> str: ...

    @abc.abstractmethod
    def word_start_table(self) -> np.ndarray:
        """bool [vocab_size]: True where a piece begins a word, and for special tokens.

        Whole-word masking groups each True token with the False tokens that follow it.
        """

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset((self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id))

    def encode_words(self, words: list[str]) -> tuple[list[int], list[int]]:
        """Ids for text already split into words (CoNLL tokens, SQuAD whitespace words), with the
        index into `words` of each token. Each word is tokenized on its own, as BERT's SQuAD and
        NER code does."""
        ids: list[int] = []
        word_ids: list[int] = []
        for index, word_pieces in enumerate(self.encode_batch(list(words))):
            ids += word_pieces
            word_ids += [index] * len(word_pieces)
        return ids, word_ids

    def encode_example(
        self, text_a: str, text_b: str | None = None, max_length: int | None = None
    ) -> Encoded:
        """`[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, cut to `max_length` tokens by dropping
        the last token of the longer text (of b when equal) until it fits, as BERT does."""
        ids_a, words_a = self.encode_with_word_ids(text_a)
        ids_b, words_b = self.encode_with_word_ids(text_b) if text_b is not None else ([], [])
        n_special = 2 if text_b is None else 3
        if max_length is not None:
            if max_length < n_special:
                raise UserError(
                    f"max_length {max_length} is too small: {n_special} special tokens "
                    f"([CLS]/[SEP]) need at least {n_special}"
                )
            keep_a, keep_b = truncated_lengths(len(ids_a), len(ids_b), max_length - n_special)
            ids_a, words_a, ids_b, words_b = (
                ids_a[:keep_a], words_a[:keep_a], ids_b[:keep_b], words_b[:keep_b]
            )  # fmt: skip
        input_ids = [self.cls_id, *ids_a, self.sep_id]
        word_ids: list[int | None] = [None, *words_a, None]
        segment_ids = [0] * len(input_ids)
        if text_b is not None:
            input_ids += [*ids_b, self.sep_id]
            word_ids += [*words_b, None]
            segment_ids += [1] * (len(ids_b) + 1)
        return Encoded(input_ids=input_ids, segment_ids=segment_ids, word_ids=word_ids)


def truncated_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths after BERT's `truncate_seq_pair`: while too long, drop from the longer text
    (from b on ties)."""
    while len_a + len_b > budget:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


def file_fingerprint(data: bytes, lowercase: bool) -> str:
    """sha256 of the vocab/model bytes followed by the casing flag, so that the same vocab used
    cased and uncased (different ids for the same text) never passes for the other."""
    return hashlib.sha256(data + f"\0lowercase={int(lowercase)}".encode()).hexdigest()


def read_tokenizer_file(path: paths.PathLike) -> bytes:
    """The bytes of a vocab or model file, local or remote; UserError naming it otherwise."""
    try:
        return paths.path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"vocab file {os.fspath(path)} does not exist") from None
    except OSError as e:
        raise UserError(paths.describe_error(path, e)) from e
