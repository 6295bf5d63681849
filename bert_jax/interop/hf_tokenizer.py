"""The tokenizer half of a Hugging Face export: the vocabulary and a `tokenizer_config.json`
that makes `transformers.AutoTokenizer` tokenize as the model was trained.

WordPiece: `vocab.txt` + `BertTokenizer` with `do_lower_case` as trained, so a cased model stays
cased (without the file, transformers lowercases). SentencePiece: our models put [PAD] [UNK]
[CLS] [SEP] [MASK] in the `.model` and normalise (NFKC, case folding when uncased) inside it, so
the file is copied as `spiece.model` for `AlbertTokenizer`: the transformers class that runs a
SentencePiece model with BERT's `[CLS] a [SEP] b [SEP]` template and segment ids. It is told
not to lowercase or strip accents itself (the model already does what training did). ALBERT's
own text preprocessing still turns `` and '' into " and splits a digit from a following comma;
text without those gives the ids bert-jax gives.
"""

from __future__ import annotations

import json

from bert_jax import paths
from bert_jax.errors import UserError

SPECIAL_TOKENS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}


def load(vocab: paths.PathLike, lowercase: bool | None = None):
    """Our tokenizer for `vocab` (vocab.txt or .model), read from anywhere `paths` reaches."""
    from bert_jax.text.load import load_tokenizer

    return load_tokenizer(vocab, lowercase=lowercase)


def trained_casing(vocab: paths.PathLike, fingerprint: str | None) -> bool | None:
    """Whether the model was trained uncased with `vocab`, from the vocab fingerprint stored in
    its checkpoint (the fingerprint covers the casing); None when no fingerprint was stored.
    A vocab whose fingerprint matches neither casing is not the model's vocabulary."""
    if not fingerprint:
        return None
    from bert_jax.text.tokenizer import file_fingerprint

    data = paths.path(vocab).read_bytes()
    for lowercase in (True, False):
        if file_fingerprint(data, lowercase) == fingerprint:
            return lowercase
    raise UserError(
        f"{vocab} is not the vocabulary this checkpoint was trained with (fingerprint differs)"
    )


def casing_beside(checkpoint: paths.PathLike) -> bool | None:
    """`do_lower_case` of the tokenizer_config.json beside a checkpoint, if it says."""
    path = paths.path(checkpoint)
    config = (path if path.is_dir() else path.parent) / "tokenizer_config.json"
    if not config.is_file():
        return None
    try:
        value = json.loads(config.read_text()).get("do_lower_case")
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, bool) else None


def tokenizer_config(tokenizer, max_length: int) -> dict:
    """`tokenizer_config.json` for our tokenizer (see the module docstring)."""
    common = {**SPECIAL_TOKENS, "model_max_length": max_length}
    if tokenizer.kind == "sentencepiece":
        return {
            **common,
            "tokenizer_class": "AlbertTokenizer",
            "do_lower_case": False,  # the model's normaliser folds case when it was trained to
            "keep_accents": True,
            "remove_space": True,
        }
    return {
        **common,
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": bool(tokenizer.lowercase),
        "strip_accents": None,  # BERT's rule: accents go with lowercasing
        "tokenize_chinese_chars": True,
    }


def save_tokenizer(
    directory: paths.PathLike, vocab: paths.PathLike, lowercase: bool | None, max_length: int
) -> list[str]:
    """Write the vocabulary and tokenizer_config.json into `directory`; returns the names."""
    tokenizer = load(vocab, lowercase)
    directory = paths.path(directory)
    name = "spiece.model" if tokenizer.kind == "sentencepiece" else "vocab.txt"
    (directory / name).write_bytes(paths.path(vocab).read_bytes())
    config = tokenizer_config(tokenizer, max_length)
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return [name, "tokenizer_config.json"]
