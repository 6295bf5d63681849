"""Shared by the tokenizer tests: the Hugging Face reference tokenizer and the Gutenberg text."""

from __future__ import annotations

import pytest

from bert_jax.text.basic import SPECIAL_TOKENS
from tests.conftest import shared_path


def slow_reference(vocab, lowercase: bool):
    """Hugging Face's slow Python BertTokenizer (transformers 5 renamed it BertTokenizerLegacy);
    skips the test without transformers."""
    pytest.importorskip("transformers", reason="transformers is the parity reference")
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as cls
    except ImportError:
        from transformers import BertTokenizer as cls
    reference = cls(str(vocab), do_lower_case=lowercase)
    assert not reference.is_fast
    return reference


def reference_ids(reference, text: str) -> list[int]:
    """BERT's basic tokenizer + WordPiece (`_tokenize`). `PreTrainedTokenizer.tokenize` adds two
    steps around it: it keeps special tokens written in the text whole (so do we; lines that
    contain one use it), and transformers 4.x first lowercases the text char by char, which loses
    the Greek final sigma that BERT's `token.lower()` keeps (we follow BERT; 5.x dropped it)."""
    if any(token in text for token in SPECIAL_TOKENS):
        tokens = reference.tokenize(text)
    else:
        tokens = reference._tokenize(text)
    return reference.convert_tokens_to_ids(tokens)


def gutenberg_lines() -> list[str]:
    """Every line of the 7 books; chesterton-ball.txt is Latin-1, so bytes are decoded as UTF-8
    with replacement, as corpus readers do."""
    corpus = shared_path("corpus", "gutenberg")
    files = sorted(corpus.glob("*.txt"))
    assert len(files) == 7, files
    return [line for f in files for line in f.read_bytes().decode("utf-8", "replace").splitlines()]


def write_slice(directory, lines_per_file: int = 2500) -> str:
    """The first lines of three books (one of them Latin-1) in one training file."""
    corpus = shared_path("corpus", "gutenberg")
    out = directory / "slice.txt"
    with open(out, "wb") as f:
        for name in ("austen-emma.txt", "chesterton-ball.txt", "melville-moby_dick.txt"):
            f.write(b"\n".join((corpus / name).read_bytes().splitlines()[:lines_per_file]) + b"\n")
    return str(out)
