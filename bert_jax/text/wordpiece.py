"""BERT WordPiece on Google `vocab.txt` files, with the ids of BERT's reference tokenizer.

The Hugging Face `tokenizers` pipeline (BertNormalizer, BertPreTokenizer, WordPiece; Rust, batch
encoding in parallel) does the work. Lines holding a character on which that pipeline differs from
BERT's (see `basic_tokenizer`) are split into words in Python instead, and only the WordPiece step
runs in Rust for them. Both paths give Hugging Face's slow `BertTokenizer` ids, tested on a corpus,
on a stress set and on every fast-path character.
"""

from __future__ import annotations

import os

import numpy as np
import tokenizers
from tokenizers import AddedToken, models, normalizers, pre_tokenizers

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.text.basic import SPECIAL_TOKENS, basic_tokenize, needs_reference_path
from bert_jax.text.tokenizer import Tokenizer, file_fingerprint, read_tokenizer_file

# BERT gives [UNK] to any word longer than this many characters instead of splitting it.
MAX_INPUT_CHARS_PER_WORD = 100


def read_vocab(path: paths.PathLike) -> tuple[list[str], bytes]:
    """The vocab's tokens in id order (one per line) and the file's bytes; UserError if the file
    is not a BERT vocab."""
    data = read_tokenizer_file(path)
    path = os.fspath(path)
    if not data.strip():
        raise UserError(f"vocab file {path} is empty")
    if b"\0" in data:
        raise UserError(f"vocab file {path} is binary, not a vocab.txt (one token per line)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"vocab file {path} is not UTF-8 text (byte {e.start})") from None
    # Line ends as Python's text mode reads them (\n, \r\n or \r), like BERT's load_vocab.
    tokens = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if tokens[-1] == "":
        tokens.pop()
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise UserError(
            f"vocab file {path} lacks the special tokens {' '.join(missing)} "
            f"({len(tokens)} lines): not a BERT WordPiece vocab"
        )
    first_line: dict[str, int] = {}
    for line, token in enumerate(tokens, start=1):
        if token in first_line:
            raise UserError(
                f"vocab file {path} repeats the token {token!r} on lines "
                f"{first_line[token]} and {line}"
            )
        first_line[token] = line
    return tokens, data


def vocab_is_cased(tokens: list[str]) -> bool:
    """Google's cased vocabs hold capitalised pieces (29% of bert-base-cased), uncased ones none:
    an uncased reading of a cased vocab would never use a third of it."""
    capitalised = sum(t != t.lower() for t in tokens if t not in SPECIAL_TOKENS)
    return capitalised >= 0.01 * len(tokens)


class WordPieceTokenizer(Tokenizer):
    kind = "wordpiece"

    def __init__(self, vocab_path: paths.PathLike, lowercase: bool | None = None):
        """`lowercase=None`: uncased, unless the vocab is plainly cased (`vocab_is_cased`)."""
        self.path = os.fspath(paths.path(vocab_path))
        self._tokens, data = read_vocab(self.path)
        if lowercase is None:
            lowercase = not vocab_is_cased(self._tokens)
        self.lowercase = bool(lowercase)
        self.vocab_size = len(self._tokens)
        self.fingerprint = file_fingerprint(data, self.lowercase)
        vocab = {token: i for i, token in enumerate(self._tokens)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            vocab[t] for t in SPECIAL_TOKENS
        )

        def wordpiece():
            return models.WordPiece(
                vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD
            )

        # Raw text -> ids. strip_accents=None follows `lowercase`, as in BERT.
        self._fast = tokenizers.Tokenizer(wordpiece())
        self._fast.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=self.lowercase
        )
        self._fast.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._fast.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS]
        )
        # The same pipeline reading special-token strings as ordinary text, for corpus text.
        self._fast_text = tokenizers.Tokenizer.from_str(self._fast.to_str())
        self._fast_text.encode_special_tokens = True
        # Words from `basic_tokenize` -> ids (no normalizer, no pre-tokenizer).
        self._words_only = tokenizers.Tokenizer(wordpiece())

    def _batch(self, texts: list[str], split_special_tokens: bool):
        fast = self._fast_text if split_special_tokens else self._fast
        encode = getattr(fast, "encode_batch_fast", fast.encode_batch)
        return encode(texts, add_special_tokens=False)

    # --- encoding --------------------------------------------------------------------------

    def _encode_full(self, text: str) -> tokenizers.Encoding:
        if needs_reference_path(text):
            words = basic_tokenize(text, self.lowercase)
            return self._words_only.encode(words, is_pretokenized=True, add_special_tokens=False)
        return self._fast.encode(text, add_special_tokens=False)

    def tokenize(self, text: str) -> list[str]:
        return list(self._encode_full(text).tokens)

    def encode(self, text: str) -> list[int]:
        return list(self._encode_full(text).ids)

    def encode_with_word_ids(self, text: str) -> tuple[list[int], list[int]]:
        encoding = self._encode_full(text)
        return list(encoding.ids), list(encoding.word_ids)

    def encode_batch(self, texts: list[str], split_special_tokens: bool = False) -> list[list[int]]:
        texts = list(texts)
        slow = [i for i, text in enumerate(texts) if needs_reference_path(text)]
        if not slow:
            return [e.ids for e in self._batch(texts, split_special_tokens)]
        slow_set = set(slow)
        fast = [i for i in range(len(texts)) if i not in slow_set]
        out: list[list[int]] = [[] for _ in texts]
        fast_encodings = self._batch([texts[i] for i in fast], split_special_tokens)
        for i, e in zip(fast, fast_encodings, strict=True):
            out[i] = e.ids
        keep = not split_special_tokens
        words = [basic_tokenize(texts[i], self.lowercase, keep_special_tokens=keep) for i in slow]
        encodings = self._words_only.encode_batch(
            words, is_pretokenized=True, add_special_tokens=False
        )
        for i, e in zip(slow, encodings, strict=True):
            out[i] = e.ids
        return out

    # --- vocab -----------------------------------------------------------------------------

    def id_to_token(self, i: int) -> str:
        if not 0 <= i < self.vocab_size:
            raise UserError(
                f"token id {i} is outside the vocab {self.path} ({self.vocab_size} ids)"
            )
        return self._tokens[i]

    def word_start_table(self) -> np.ndarray:
        table = np.array([not t.startswith("##") for t in self._tokens], dtype=bool)
        table[list(self.special_ids)] = True
        return table

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Tokens joined by spaces, '##' pieces glued on, then Hugging Face's cleanup of spaces
        before punctuation and English contractions (the same text as its `decode`)."""
        specials = self.special_ids if skip_special_tokens else frozenset()
        tokens = [self.id_to_token(int(i)) for i in ids if int(i) not in specials]
        text = " ".join(tokens).replace(" ##", "").strip()
        for before, after in _CLEANUP:
            text = text.replace(before, after)
        return text


_CLEANUP = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
    (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)  # fmt: skip
