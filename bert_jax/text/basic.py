"""BERT's basic tokenizer in Python, and the characters on which the Rust pipeline agrees with it.

WordPiece runs on the Hugging Face `tokenizers` pipeline (Rust) because it is fast. That pipeline
differs from BERT's reference tokenizer on some inputs: it lowercases char by char (no final
sigma), has no NFC step, and its Unicode tables differ from Python's (it keeps unassigned code
points and newer characters that BERT deletes as "control"). So each line whose characters all lie
in `FAST_PATH_BLOCKS` (and pass `_agrees_everywhere`) goes to Rust; any other line goes through
`basic_tokenize` below, a line-by-line transcription of BERT's `BasicTokenizer` (with the NFC step
Hugging Face added), whose words are then split by the same Rust WordPiece model.
"""

from __future__ import annotations

import functools
import re
import unicodedata

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Special tokens written in the text stay whole, as in Hugging Face's BertTokenizer.
_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")

# Unicode blocks searched for fast-path characters (everything ASCII is fast too). Widening the
# list is safe only if tests/text/test_wordpiece.py still passes: it checks every character.
FAST_PATH_BLOCKS = (
    (0x0080, 0x02FF),  # Latin-1 Supplement, Latin Extended-A/B, IPA, spacing modifiers
    (0x0370, 0x052F),  # Greek and Coptic, Cyrillic, Cyrillic Supplement
    (0x1E00, 0x1EFF),  # Latin Extended Additional (Vietnamese)
    (0x2000, 0x2BFF),  # General Punctuation ... Miscellaneous Symbols and Arrows
    (0x3000, 0x33FF),  # CJK punctuation, kana, Bopomofo, Hangul compatibility jamo, CJK enclosed
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7A3),  # Hangul syllables
    (0xFF00, 0xFFEF),  # Halfwidth and Fullwidth Forms
    (0xFFFD, 0xFFFD),  # replacement character (left by decoding bad UTF-8; deleted by both)
    (0x1F1E6, 0x1F1FF),  # regional indicators (flags)
    (0x1F300, 0x1F6FF),  # emoji and pictographs
    (0x1F900, 0x1FAFF),  # supplemental emoji and symbols
)


def _agrees_everywhere(char: str) -> bool:
    """Whether a character behaves the same in both pipelines whatever its neighbours are.

    Excluded: unassigned/private/surrogate code points (BERT deletes them, Rust may not), marks
    and anything NFC would change or compose (BERT applies NFC, Rust does not), and capital sigma
    (its lower case depends on the next character in Python).
    """
    category = unicodedata.category(char)
    if category[0] == "M" or category in ("Cn", "Co", "Cs") or char == "\u03a3":
        return False
    if unicodedata.combining(char) or unicodedata.normalize("NFC", char) != char:
        return False
    # Decompositions (for accent stripping) must start with a starter, so canonical reordering
    # never moves marks across characters.
    return not any(
        unicodedata.combining(unicodedata.normalize("NFD", text)[0])
        for text in (char, char.lower())
    )


@functools.cache
def fast_path_chars() -> str:
    """Every non-ASCII character that may go down the Rust path, in code point order."""
    return "".join(
        chr(cp)
        for first, last in FAST_PATH_BLOCKS
        for cp in range(first, last + 1)
        if _agrees_everywhere(chr(cp))
    )


@functools.cache
def _outside_fast_path() -> re.Pattern:
    chars = fast_path_chars()
    ranges, start = [], 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or ord(chars[i]) != ord(chars[i - 1]) + 1:
            ranges.append(f"{re.escape(chars[start])}-{re.escape(chars[i - 1])}")
            start = i
    return re.compile("[^\\x00-\\x7f" + "".join(ranges) + "]")


def needs_reference_path(text: str) -> bool:
    """True when `text` has a character on which the Rust pipeline may differ from BERT's."""
    return not text.isascii() and _outside_fast_path().search(text) is not None


# --- BERT's BasicTokenizer -------------------------------------------------------------------


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    # BERT counts all non-letter/number ASCII as punctuation ("$", "^", "`") besides category P*.
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


@functools.lru_cache(maxsize=1 << 16)
def _clean_char(char: str) -> str:
    """Text cleaning and CJK spacing for one character: deleted, a space, spaced out, or kept."""
    cp = ord(char)
    if cp == 0 or cp == 0xFFFD or _is_control(char):
        return ""
    if _is_whitespace(char):
        return " "
    if _is_cjk(cp):
        return f" {char} "
    return char


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _split_on_punctuation(token: str) -> list[str]:
    pieces: list[str] = []
    start_new = True
    for char in token:
        if _is_punctuation(char):
            pieces.append(char)
            start_new = True
        else:
            if start_new:
                pieces.append("")
            start_new = False
            pieces[-1] += char
    return pieces


def _basic_words(text: str, lowercase: bool) -> list[str]:
    text = unicodedata.normalize("NFC", "".join(map(_clean_char, text)))
    words: list[str] = []
    for token in text.split():
        if lowercase:
            token = _strip_accents(token.lower())
        words.extend(_split_on_punctuation(token))
    return " ".join(words).split()


def basic_tokenize(text: str, lowercase: bool, keep_special_tokens: bool = True) -> list[str]:
    """BERT's words for `text`: cleaned, CJK and punctuation split, lowercased without accents.

    Special tokens written in the text ("[MASK]") are kept as single words, as Hugging Face does;
    with `keep_special_tokens=False` they are ordinary text, as in Google's original code.
    """
    if not keep_special_tokens:
        return _basic_words(text, lowercase)
    words: list[str] = []
    for i, part in enumerate(_SPECIAL_SPLIT.split(text)):
        if i % 2:
            words.append(part)
        elif part:
            words.extend(_basic_words(part, lowercase))
    return words
