"""Train a BERT WordPiece vocab (`vocab.txt`) on sentences, with Hugging Face `tokenizers`.

BERT's conventions: the five special tokens first ([PAD] is id 0, as padding assumes), then
every character seen, then the pieces the trainer learns, continuations prefixed with "##".
The text is normalised and split into words as BERT's basic tokenizer does (BertNormalizer:
control characters dropped, CJK characters split apart, lowercased with accents stripped when
uncased; BertPreTokenizer: whitespace and punctuation), so the pieces match what
`bert_jax.text.wordpiece` will cut the same text into.
"""

from __future__ import annotations

from collections.abc import Iterable

from bert_jax.errors import UserError
from bert_jax.text.basic import SPECIAL_TOKENS

PREFIX = "##"
# A piece must occur this often to be learnt; rarer words are spelled with shorter pieces.
MIN_FREQUENCY = 2


def train_wordpiece(sentences: Iterable[str], vocab_size: int, lowercase: bool = True) -> list[str]:
    """The vocab's tokens in id order, at most `vocab_size` of them (fewer when the text has
    fewer distinct pieces worth learning). Deterministic for the same sentences."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    if vocab_size <= len(SPECIAL_TOKENS):
        raise UserError(f"vocab size {vocab_size} leaves no room beside the special tokens")
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    sentences = list(sentences)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=MIN_FREQUENCY,
        special_tokens=[*SPECIAL_TOKENS, *_characters(tokenizer, sentences)],
        continuing_subword_prefix=PREFIX,
        show_progress=False,
    )
    tokenizer.train_from_iterator(sentences, trainer)
    by_id = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return [token for token, _ in by_id]


def _characters(tokenizer, sentences: list[str]) -> list[str]:
    """Every character of the normalised text, then each with the continuation prefix, sorted.

    Given to the trainer ahead of training so their ids are fixed: otherwise it numbers the
    "##x" pieces in the order of a hash map, which changes from one process to the next, and
    merges of equal count are ranked by those ids, so each run would learn a slightly different
    vocab."""
    normalize = tokenizer.normalizer.normalize_str
    chars = sorted({c for s in sentences for c in normalize(s) if not c.isspace()})
    return chars + [PREFIX + c for c in chars]
