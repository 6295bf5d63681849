"""WordPiece ids equal those of Hugging Face's slow Python `BertTokenizer` (BERT's own algorithm),
on a corpus, on a stress set, and for every character the Rust path handles
(`tokenizer_references.reference_ids` says what exactly is compared)."""

from __future__ import annotations

import random
import time
import unicodedata

import pytest

from bert_jax.text.basic import fast_path_chars, needs_reference_path
from bert_jax.text.load import load_tokenizer
from tests.conftest import shared_path
from tests.text.references import gutenberg_lines, reference_ids, slow_reference

CASINGS = {"uncased": True, "cased": False}

# Hand-made inputs where tokenizers tend to disagree.
STRESS = [
    "I love BERT model",
    "Ünïcödé naïve café résumé Ångström ÉCOLE Ça Øresund",
    "e\u0301 a\u0300 n\u0303o combining\u0301 marks \u0301start",
    "İstanbul ǅungla ß ẞ ﬁnance Ǆ ŉ",
    "ΟΔΟΣ ΚΑΛΟΣ. Σ ΣΑ όσος ΌΣΟΣ",
    "Привет, мир! Ёлка",
    "中文字符測試，日本語のテキスト、한국어 텍스트 ㄱㄴ",
    "ﾊﾟ ｶﾞ ガ か\u3099 ＡＢＣ１２３",
    "\u2126hm \u212bngström \u0374 \uf900\uf901 \u2f00",
    "\U00020000 \U0002b820\U0002b900 \U0002ceaf \U0002f800",
    "😀 👍🏽 👨\u200d👩\u200d👧 🫨 🇫🇷🇩🇪 ❤️",
    "\x00\x01\x07\x1b\x7f control \x85next\x0bvt\x0cff",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom \u2060wj \u00adsoft",
    "tabs\tand\nnew\rlines\r\n\u00a0nbsp\u2003em\u3000ideo\u2028ls\u2029ps",
    "   leading and trailing   ",
    "",
    " \t\n ",
    "x" * 100,
    "y" * 101,
    "supercalifragilisticexpialidocious" * 3 + " short",
    "ab" * 60 + ".end",
    "...!!!???,,,;;;:::---———–––«»“”‘’„‟‹›",
    "$5.00 ^caret `tick` ~tilde |pipe \\back @at #hash %pct &amp *star +plus =eq <lt> {b}",
    "Ã©tÃ© caf\u00c3\u00a9 â€œquoteâ€\x9d Ã¼ber â€™s",
    "\ufffd\ufffd abc\ufffddef \ufffd",
    "[CLS] [SEP] x[MASK]y [PAD][UNK] [cls] [Mask] [ SEP ]",
    "e\u0301[MASK]x \u0378[SEP] Ünï[UNK]",
    "é" * 60 + "x" * 41,
    "e\u0301" * 51,
    "E\u0301" * 101,
    "don't won't I'm they're we've it's O'Neill",
    "Ⅻ ① ㈱ ㎏ ™ ℃ ½ ² ³ µ",
    "\U000e0001\U000e0041 tags \U000f0000 private \ue000 use",
    "\u0378\u0379 unassigned \U0001fae9 \U000d0000",
    "mixed\u2009thin\u200ahair\u202fnarrow\u205fmath space",
    "ﾟ゛゜ ゠ ・ ー 〜 ～",
    "Tiếng Việt có dấu: Đường phố Hà Nội",
    "שלום עולם مرحبا بالعالم नमस्ते दुनिया",
    "ab\u0345c \u0344 \u0958 \u09cb \u0b4b \u0bca",
]


@pytest.fixture(scope="module", params=list(CASINGS))
def pair(request):
    """(ours, slow reference) for one vocab."""
    vocab = shared_path("vocab", f"bert-base-{request.param}", "vocab.txt")
    lowercase = CASINGS[request.param]
    return load_tokenizer(vocab, lowercase=lowercase), slow_reference(vocab, lowercase)


@pytest.mark.slow
def test_every_gutenberg_line_matches_slow_bert_tokenizer(pair):
    ours, reference = pair
    lines = gutenberg_lines()
    start = time.perf_counter()
    expected = [reference_ids(reference, line) for line in lines]
    reference_seconds = time.perf_counter() - start
    got = ours.encode_batch(lines)
    different = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
    print(f"slow reference: {len(lines)} lines in {reference_seconds:.1f} s")
    assert not different, [(lines[i], got[i], expected[i]) for i in different[:5]]


def test_stress_set_matches_slow_bert_tokenizer(pair):
    ours, reference = pair
    batch = ours.encode_batch(STRESS)
    for text, from_batch in zip(STRESS, batch, strict=True):
        expected = reference_ids(reference, text)
        assert from_batch == expected, text
        assert ours.encode(text) == expected, text
        assert ours.tokenize(text) == reference.convert_ids_to_tokens(expected), text


def test_the_stress_set_exercises_both_paths():
    assert sum(map(needs_reference_path, STRESS)) >= 10
    assert sum(not needs_reference_path(t) for t in STRESS) >= 10


@pytest.mark.slow
def test_every_fast_path_character_matches_in_context(pair):
    """The Rust path is taken only for characters checked here, each in several neighbourhoods."""
    ours, reference = pair
    chars = [chr(c) for c in range(128)] + list(fast_path_chars())
    # Inside a word, after a capital, alone, doubled, beside a digit and punctuation.
    texts = [f"x{c}y A{c} {c} {c}{c} 1{c}." for c in chars]
    assert not any(map(needs_reference_path, texts))
    got = ours.encode_batch(texts)
    different = [t for t, ids in zip(texts, got, strict=True) if ids != reference_ids(reference, t)]
    assert not different, [(t, [hex(ord(c)) for c in t]) for t in different[:10]]


def test_random_strings_of_fast_path_characters_match(pair):
    ours, reference = pair
    rng = random.Random(0)
    alphabet = list(fast_path_chars()) + list("abcXYZ019 .,'-\t")
    texts = ["".join(rng.choices(alphabet, k=rng.randint(1, 16))) for _ in range(3000)]
    got = ours.encode_batch(texts)
    different = [t for t, ids in zip(texts, got, strict=True) if ids != reference_ids(reference, t)]
    assert not different, different[:10]


def test_no_fast_path_character_can_compose_with_the_one_before():
    """NFC (which BERT applies and the Rust path does not) only merges a character into the one
    before it if it is the non-first part of a canonical decomposition."""
    seconds = set()
    for cp in range(0x110000):
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            seconds.update(chr(int(h, 16)) for h in decomposition.split()[1:])
    seconds.update(chr(c) for c in range(0x1160, 0x1200))  # Hangul medial/final jamo
    assert not seconds & set(fast_path_chars())


def test_fallback_path_gives_the_same_ids_and_words_as_the_fast_path(pair):
    """Prefixing U+0378 (unassigned, which BERT deletes) sends a line down the Python path."""
    ours, _ = pair
    for line in gutenberg_lines()[::40]:
        assert needs_reference_path("\u0378" + line)
        assert ours.encode_with_word_ids("\u0378" + line) == ours.encode_with_word_ids(line)
