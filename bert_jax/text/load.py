"""`load_tokenizer(path)`: the Tokenizer a vocab or model file asks for, and SentencePiece
training. The implementations are imported when chosen, so a WordPiece user never loads
sentencepiece (and this module is the only one that knows both)."""

from __future__ import annotations

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.text.tokenizer import Tokenizer


def load_tokenizer(path: paths.PathLike, lowercase: bool | None = None) -> Tokenizer:
    """WordPiece for `vocab.txt` (or a directory holding it), SentencePiece for `*.model`; local
    or remote (gs://) alike.

    `lowercase=None` means uncased for WordPiece (unless the vocab holds capitalised pieces, as
    Google's cased vocabs do) and whatever the model was trained with for SentencePiece. Bad or
    missing files raise `UserError` naming the file.
    """
    path = paths.path(path)
    try:
        if path.is_dir():
            if not (path / "vocab.txt").is_file():
                raise UserError(
                    f"directory {path} has no vocab.txt (give a vocab.txt or a .model file)"
                )
            path = path / "vocab.txt"
        if not path.is_file():
            raise UserError(f"vocab file {path} does not exist")
    except OSError as e:
        raise UserError(paths.describe_error(path, e)) from e
    if path.suffix == ".model":
        from bert_jax.text.sentencepiece import SentencePieceTokenizer

        return SentencePieceTokenizer(path, lowercase=lowercase)
    from bert_jax.text.wordpiece import WordPieceTokenizer

    return WordPieceTokenizer(path, lowercase=lowercase)


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
    """Train a SentencePiece model with BERT's special tokens; returns the `.model` path.

    See `bert_jax.text.sentencepiece.train_sentencepiece`.
    """
    from bert_jax.text import sentencepiece

    return sentencepiece.train_sentencepiece(
        input_files,
        model_prefix,
        vocab_size,
        lowercase=lowercase,
        model_type=model_type,
        input_sentence_size=input_sentence_size,
        seed=seed,
    )
