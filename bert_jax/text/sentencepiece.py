"""SentencePiece models behind the `Tokenizer` interface, and training them with BERT's specials.

Trained models put [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4 first. [CLS]/[SEP]/[MASK] are
SentencePiece control symbols and [PAD]/[UNK] its pad and unknown pieces: none is ever read out of
text, so a corpus line containing "[MASK]" cannot inject one (`split_special_tokens` changes
nothing here: the text is always split). Lowercasing is part of the model (the
`nmt_nfkc_cf` normalization rule, NFKC plus case folding), so the casing flag is read from it.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import numpy as np
import sentencepiece as spm
from sentencepiece import sentencepiece_pb2

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.text.basic import SPECIAL_TOKENS
from bert_jax.text.tokenizer import Tokenizer, file_fingerprint, read_tokenizer_file

WORD_START = "\u2581"  # "▁": SentencePiece's mark for a piece that follows whitespace
MODEL_TYPES = ("unigram", "bpe", "char", "word")
_RULES = {True: "nmt_nfkc_cf", False: "nmt_nfkc"}  # lowercase -> normalization rule


def _model_lowercases(processor: spm.SentencePieceProcessor) -> bool:
    """Whether the model's normalizer folds case: "ABC" and "abc" normalize to the same text."""
    return processor.normalize("ABC Xyz") == processor.normalize("abc xyz")


def _parallelism_off() -> bool:
    """The switch Hugging Face `tokenizers` reads, so one setting governs both kinds (worker
    processes that each own a core turn the thread pools off)."""
    return os.environ.get("TOKENIZERS_PARALLELISM", "").lower() in ("0", "false", "off", "no", "n")


class SentencePieceTokenizer(Tokenizer):
    kind = "sentencepiece"

    def __init__(self, model_path: paths.PathLike, lowercase: bool | None = None):
        self.path = os.fspath(paths.path(model_path))
        data = read_tokenizer_file(self.path)
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(data)
        except (RuntimeError, OSError, ValueError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"{self.path} is not a SentencePiece model: {first_line}") from None
        self.vocab_size = self._sp.get_piece_size()
        self._pieces = [self._sp.id_to_piece(i) for i in range(self.vocab_size)]
        ids = {t: self._sp.piece_to_id(t) for t in SPECIAL_TOKENS}
        missing = [t for t, i in ids.items() if self._pieces[i] != t]
        if missing:
            raise UserError(
                f"SentencePiece model {self.path} lacks the special tokens {' '.join(missing)}; "
                "train it with bert_jax.text.load.train_sentencepiece"
            )
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = ids.values()
        self.lowercase = _model_lowercases(self._sp)
        if lowercase is not None and bool(lowercase) != self.lowercase:
            raise UserError(
                f"SentencePiece model {self.path} is {'un' if self.lowercase else ''}cased "
                f"(casing is fixed by training); it cannot be used with lowercase={lowercase}"
            )
        self.fingerprint = file_fingerprint(data, self.lowercase)

    def tokenize(self, text: str) -> list[str]:
        return [self._pieces[i] for i in self.encode(text)]

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text, out_type=int))

    def encode_batch(self, texts: list[str], split_special_tokens: bool = False) -> list[list[int]]:
        threads = 1 if _parallelism_off() else -1  # -1: one thread per core
        return [
            list(ids) for ids in self._sp.encode(list(texts), out_type=int, num_threads=threads)
        ]

    def encode_batch_with_offsets(
        self, texts: list[str], split_special_tokens: bool = False
    ) -> list[tuple[list[int], list[tuple[int, int]]]]:
        texts = list(texts)
        threads = 1 if _parallelism_off() else -1
        # Each piece's begin/end are UTF-8 byte offsets into the original text (SentencePiece
        # tracks its normalization); they become character offsets here. Serialized protos,
        # parsed here, are the form every sentencepiece >= 0.2 returns.
        protos = self._sp.encode(texts, out_type="serialized_proto", num_threads=threads)
        out = []
        for text, proto in zip(texts, protos, strict=True):
            pieces = sentencepiece_pb2.SentencePieceText.FromString(proto).pieces
            char_of_byte = _char_of_byte(text)
            ids, offsets = [], []
            for piece in pieces:
                ids.append(piece.id)
                offsets.append(
                    _trim_whitespace(text, char_of_byte[piece.begin], char_of_byte[piece.end])
                )
            out.append((ids, offsets))
        return out

    def encode_with_word_ids(self, text: str) -> tuple[list[int], list[int]]:
        ids = self.encode(text)
        # Surface pieces (unknown characters keep their text here), to see where words begin.
        surfaces = self._sp.encode(text, out_type=str)
        word_ids, word = [], -1
        for position, surface in enumerate(surfaces):
            if position == 0 or surface.startswith(WORD_START):
                word += 1
            word_ids.append(word)
        return ids, word_ids

    def id_to_token(self, i: int) -> str:
        if not 0 <= i < self.vocab_size:
            raise UserError(
                f"token id {i} is outside the model {self.path} ({self.vocab_size} ids)"
            )
        return self._pieces[i]

    def word_start_table(self) -> np.ndarray:
        table = np.array([p.startswith(WORD_START) for p in self._pieces], dtype=bool)
        table[list(self.special_ids)] = True
        return table

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """SentencePiece's detokenization; special tokens are dropped, or written as "[CLS]"."""
        ids = [int(i) for i in ids]
        for i in ids:
            self.id_to_token(i)  # range check with a clear message
        if skip_special_tokens:
            return self._sp.decode([i for i in ids if i not in self.special_ids])
        parts: list[str] = []
        run: list[int] = []
        for i in [*ids, None]:
            if i is not None and i not in self.special_ids:
                run.append(i)
                continue
            if run:
                parts.append(self._sp.decode(run))
                run = []
            if i is not None:
                parts.append(self._pieces[i])
        return " ".join(parts)


def _char_of_byte(text: str) -> np.ndarray:
    """int64 [len(utf8) + 1]: the index of the character at each UTF-8 byte offset of `text`
    (offsets inside a character give the next character)."""
    if text.isascii():
        return np.arange(len(text) + 1)
    sizes = np.fromiter((len(char.encode("utf-8")) for char in text), np.int64, len(text))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return np.searchsorted(starts, np.arange(starts[-1] + 1))


def _trim_whitespace(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without the whitespace a "▁" piece was read from, unless that is all it has."""
    first, last = start, end
    while first < last and text[first].isspace():
        first += 1
    while last > first and text[last - 1].isspace():
        last -= 1
    return (int(first), int(last)) if first < last else (int(start), int(end))


def _corpus_lines(paths: list[pathlib.Path]) -> Iterator[str]:
    # Bytes decoded as UTF-8 with replacement: real corpora hold stray Latin-1.
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line := line.strip():
                    yield line


def train_sentencepiece(
    input_files: list[str],
    model_prefix: str,
    vocab_size: int,
    *,
    lowercase: bool = True,
    model_type: str = "unigram",
    input_sentence_size: int = 1_000_000,
    seed: int = 0,
) -> str:
    """Train on the lines of `input_files` (a sample of `input_sentence_size` of them); writes
    `model_prefix.model` and `.vocab` and returns the `.model` path."""
    paths = [pathlib.Path(p) for p in input_files]
    if not paths:
        raise UserError("train_sentencepiece needs at least one input file")
    for p in paths:
        if not p.is_file():
            raise UserError(f"training file {p} does not exist")
    if model_type not in MODEL_TYPES:
        raise UserError(f"model_type {model_type!r} is not one of {', '.join(MODEL_TYPES)}")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise UserError(f"vocab_size {vocab_size} leaves no room beside the 5 special tokens")
    pathlib.Path(model_prefix).parent.mkdir(parents=True, exist_ok=True)
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=_corpus_lines(paths),
            model_prefix=str(model_prefix),
            vocab_size=vocab_size,
            model_type=model_type,
            normalization_rule_name=_RULES[bool(lowercase)],
            pad_id=0,
            pad_piece="[PAD]",
            unk_id=1,
            unk_piece="[UNK]",
            bos_id=-1,
            eos_id=-1,
            control_symbols=list(SPECIAL_TOKENS[2:]),
            input_sentence_size=input_sentence_size,
            shuffle_input_sentence=True,
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    except RuntimeError as e:
        # e.g. "Vocabulary size too high (5000). Please set it to a value <= 3021."
        raise UserError(f"SentencePiece training on {len(paths)} file(s) failed: {e}") from None
    return f"{model_prefix}.model"
