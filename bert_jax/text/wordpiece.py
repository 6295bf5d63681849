"""BERT WordPiece on Google `vocab.txt` files, with the ids of BERT's reference tokenizer.

The Hugging Face `tokenizers` pipeline (BertNormalizer, BertPreTokenizer, WordPiece; Rust, batch
encoding in parallel) does the work. Lines holding a character on which that pipeline differs from
BERT's (see `basic_tokenizer`) are split into words in Python instead, and only the WordPiece step
runs in Rust for them. Both paths give Hugging Face's slow `BertTokenizer` ids, tested on a corpus,
on a stress set and on every fast-path character.

Character offsets (`encode_batch_with_offsets`) come from the Rust pipeline's alignments, or, on the
Python path, from the words of `_aligned_words` below, which keep the span of every character.
"""

from __future__ import annotations

import os
import unicodedata

import numpy as np
import tokenizers
from tokenizers import AddedToken, models, normalizers, pre_tokenizers

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.text.basic import (
    _SPECIAL_SPLIT,
    SPECIAL_TOKENS,
    _basic_words,
    _clean_char,
    _is_punctuation,
    _strip_accents,
    basic_tokenize,
    needs_reference_path,
)
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

    def encode_batch_with_offsets(
        self, texts: list[str], split_special_tokens: bool = False
    ) -> list[tuple[list[int], list[tuple[int, int]]]]:
        texts = list(texts)
        out: list[tuple[list[int], list[tuple[int, int]]]] = [([], []) for _ in texts]
        slow = [i for i, text in enumerate(texts) if needs_reference_path(text)]
        slow_set = set(slow)
        fast = [i for i in range(len(texts)) if i not in slow_set]
        # `encode_batch`, not `encode_batch_fast`: the fast variant leaves offsets at (0, 0).
        # Offsets of the Rust pipeline already point into the original text (it tracks every
        # normalizer step), in characters.
        pipeline = self._fast_text if split_special_tokens else self._fast
        encodings = pipeline.encode_batch([texts[i] for i in fast], add_special_tokens=False)
        for i, e in zip(fast, encodings, strict=True):
            out[i] = (e.ids, e.offsets)
        if not slow:
            return out
        # Python words with the original span of each of their characters; WordPiece's offsets
        # are then within a word.
        keep = not split_special_tokens
        aligned = [_aligned_words(texts[i], self.lowercase, keep) for i in slow]
        encodings = self._words_only.encode_batch(
            [[word for word, _ in words] for words in aligned],
            is_pretokenized=True,
            add_special_tokens=False,
        )
        for i, words, e in zip(slow, aligned, encodings, strict=True):
            offsets = []
            for word, (start, end) in zip(e.word_ids, e.offsets, strict=True):
                spans = words[word][1][start:end]
                offsets.append((min(s for s, _ in spans), max(t for _, t in spans)))
            out[i] = (e.ids, offsets)
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


# --- character offsets of BERT's basic tokenizer -------------------------------------------------
# `basic_tokenize` with the original (start, end) of every character of every word. Each step
# that changes text (NFC, lowercasing, accent stripping) is applied to the whole token, as BERT
# does, and its output is shared out among the pieces of input it came from; when that cannot be
# done, every character of the token gets the token's whole span (coarse, never wrong).

_Span = tuple[int, int]
_Unit = tuple[str, int, int]  # normalized text and the original span it came from
_Word = tuple[str, list[_Span]]  # a word and the original span of each of its characters


def _aligned_words(text: str, lowercase: bool, keep_special_tokens: bool) -> list[_Word]:
    if not keep_special_tokens:
        return _aligned_basic_words(text, lowercase, 0)
    words: list[_Word] = []
    position = 0
    for i, part in enumerate(_SPECIAL_SPLIT.split(text)):
        if i % 2:  # a special token written in the text: one word
            words.append((part, [(position, position + len(part))] * len(part)))
        elif part:
            words += _aligned_basic_words(part, lowercase, position)
        position += len(part)
    return words


def _aligned_basic_words(text: str, lowercase: bool, base: int) -> list[_Word]:
    # Cleaning is per character. BERT applies NFC to the whole text before splitting on
    # whitespace; no whitespace character composes or reorders, so per-token NFC is the same.
    words: list[_Word] = []
    token: list[tuple[str, int]] = []
    for i, char in enumerate(text):
        for cleaned in _clean_char(char):
            if cleaned.isspace():
                words += _token_words(token, lowercase)
                token = []
            else:
                token.append((cleaned, base + i))
    return words + _token_words(token, lowercase)


def _token_words(token: list[tuple[str, int]], lowercase: bool) -> list[_Word]:
    if not token:
        return []
    text = "".join(char for char, _ in token)
    if text.isascii():  # nothing to compose, lowercasing is one to one, no accents
        units = [(char.lower() if lowercase else char, o, o + 1) for char, o in token]
        return _split_units(units)
    units = _nfc_units(token)
    if lowercase:
        units = _share_out(units, str.lower)  # on the whole token: Greek final sigma
        units = _share_out(units, _strip_accents)
    words = _split_units(units)
    expected = _basic_words(text, lowercase)
    if [word for word, _ in words] != expected:
        whole = (token[0][1], token[-1][1] + 1)
        return [(word, [whole] * len(word)) for word in expected]
    return words


def _nfc_units(token: list[tuple[str, int]]) -> list[_Unit]:
    """NFC by clusters of characters that compose or reorder together; a cluster NFC leaves as
    it is stays one unit per character."""
    units: list[_Unit] = []
    cluster: list[tuple[str, int]] = []

    def flush() -> None:
        text = "".join(char for char, _ in cluster)
        composed = unicodedata.normalize("NFC", text)
        if composed == text:
            units.extend((char, origin, origin + 1) for char, origin in cluster)
        else:
            units.append((composed, cluster[0][1], cluster[-1][1] + 1))

    for char, origin in token:
        if cluster and _joins(cluster, char):
            cluster.append((char, origin))
            continue
        if cluster:
            flush()
        cluster = [(char, origin)]
    flush()
    return units


def _joins(cluster: list[tuple[str, int]], char: str) -> bool:
    """Whether NFC may combine `char` with the cluster before it (ASCII never does)."""
    if char.isascii():
        return False
    if unicodedata.combining(char):
        return True
    text = "".join(c for c, _ in cluster)
    nfc = unicodedata.normalize
    return nfc("NFC", text + char) != nfc("NFC", text) + nfc("NFC", char)


def _share_out(units: list[_Unit], transform) -> list[_Unit]:
    """`transform` of the units' joined text, cut back into units by the length each unit gives
    on its own; one unit over the whole span when the lengths do not add up. A unit that comes
    out empty (an accent stripped) joins the span of the one before, so that a letter's span
    holds its marks."""
    whole = transform("".join(text for text, _, _ in units))
    parts = [transform(text) for text, _, _ in units]
    if sum(map(len, parts)) != len(whole):
        return [(whole, units[0][1], units[-1][2])]
    out: list[_Unit] = []
    position = 0
    for (_, start, end), part in zip(units, parts, strict=True):
        if not part and out:
            out[-1] = (out[-1][0], out[-1][1], end)
            continue
        out.append((whole[position : position + len(part)], start, end))
        position += len(part)
    return out


def _split_units(units: list[_Unit]) -> list[_Word]:
    """BERT's split on punctuation (each mark a word) and on whitespace, spans kept."""
    words: list[_Word] = []
    chars: list[str] = []
    spans: list[_Span] = []

    def end_word() -> None:
        if chars:
            words.append(("".join(chars), list(spans)))
            chars.clear()
            spans.clear()

    for text, start, end in units:
        for char in text:
            if char.isspace():
                end_word()
            elif _is_punctuation(char):
                end_word()
                words.append((char, [(start, end)]))
            else:
                chars.append(char)
                spans.append((start, end))
    end_word()
    return words
