"""Character offsets of `encode_batch_with_offsets`: the ids of `encode_batch`, and per token the
span of the original text it was read from.

WordPiece is checked against Hugging Face's `BertTokenizerFast(return_offsets_mapping=True)` on
real text (Gutenberg, SQuAD contexts) and hand-made lines with accents, CJK and punctuation; the
Python path (lines with a character the Rust pipeline reads differently) against the same
reference by sending reference-path-free lines down it, and against BERT's own basic tokenizer.
SentencePiece is checked against the processor's byte offsets, worked out by hand, and against
its `offset_mapping` where the installed version has one.
"""

from __future__ import annotations

import json
import unicodedata

import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_pb2

from bert_jax.text.basic import basic_tokenize, needs_reference_path
from bert_jax.text.load import load_tokenizer, train_sentencepiece
from tests.conftest import shared_path
from tests.text.references import gutenberg_lines, write_slice

CASINGS = {"uncased": True, "cased": False}

LINES = [
    "Ünïcödé naïve café résumé Ångström ÉCOLE Ça Øresund",
    "İstanbul ǅungla ß ẞ ﬁnance Ǆ ŉ — “quoted,” (parenthetical) 'single' x-y a/b",
    "中文字符測試，日本語のテキスト、한국어 텍스트 北京大学 in 1898.",
    "Привет, мир! Ёлка; ΟΔΟΣ ΚΑΛΟΣ. Tiếng Việt có dấu: Đường phố Hà Nội",
    "$5.00 ^caret `tick` ~tilde |pipe \\back @at #hash %pct &amp *star +plus =eq <lt> {b}",
    "don't won't I'm they're O'Neill's 1,000,000 3.14159 e.g. U.S.A.",
    "tabs\tand\nnew\rlines\r\n\u00a0nbsp\u2003em\u3000ideo  spaced   out ",
    "😀 emoji 👍🏽 and ＡＢＣ１２３ ﾊﾟ fullwidth [SEP] special [MASK] tokens",
    "x" * 100 + " " + "y" * 101 + " supercalifragilisticexpialidocious",
    "\x00\x01 control\x7f chars \ufffd replaced",
]
# Characters the Rust pipeline reads differently from BERT: these lines take the Python path.
REFERENCE_PATH_LINES = [
    "e\u0301te a\u0300 n\u0303o combining\u0301 marks \u0301start",
    "ΟΔΟΣ ΚΑΛΟΣ. Σ ΣΑ όσος ΌΣΟΣ",
    "नमस्ते दुनिया שלום עולם مرحبا بالعالم",
    "\u0378 unassigned Ⅻ ① zero\u200bwidth \u2028ls\u2029ps",
    "ὅτι ἐν ᾅδου Ἀθῆναι a\u0301\u0327b \u1100\u1161\u11a8 [SEP] e\u0301[MASK]x",
    "ab\u0345c \u0344 \u0958 \u09cb \u0b4b \u0bca",
]


@pytest.fixture(scope="module", params=list(CASINGS))
def wordpiece(request):
    """(ours, Hugging Face BertTokenizerFast) for one vocab."""
    transformers = pytest.importorskip("transformers", reason="transformers is the reference")
    vocab = shared_path("vocab", f"bert-base-{request.param}", "vocab.txt")
    lowercase = CASINGS[request.param]
    reference = transformers.BertTokenizerFast(vocab_file=str(vocab), do_lower_case=lowercase)
    return load_tokenizer(vocab, lowercase=lowercase), reference


def squad_contexts() -> list[str]:
    data = json.loads(shared_path("squad", "dev-v1.1.json").read_text(encoding="utf-8"))
    return [p["context"] for article in data["data"] for p in article["paragraphs"]]


def hugging_face(reference, texts: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
    out = reference(texts, add_special_tokens=False, return_offsets_mapping=True)
    return [
        (ids, [tuple(o) for o in offsets])
        for ids, offsets in zip(out["input_ids"], out["offset_mapping"], strict=True)
    ]


def check_spans(tokenizer, text: str, ids: list[int], offsets: list[tuple[int, int]]) -> None:
    """Each span lies in the text, in order, without whitespace at its ends, and BERT's basic
    tokenizer reads the piece out of it ([UNK]: a whole word; "##" marks a word's inside)."""
    assert len(ids) == len(offsets), text
    previous = 0
    for i, (start, end) in zip(ids, offsets, strict=True):
        assert previous <= start < end <= len(text), (text, offsets)
        assert not text[start].isspace() and not text[end - 1].isspace(), (text, start, end)
        previous = start
        piece = tokenizer.id_to_token(i)
        if i != tokenizer.unk_id:
            read = "".join(basic_tokenize(text[start:end], tokenizer.lowercase))
            assert piece.removeprefix("##") in read, (text, piece, text[start:end])


def test_real_text_matches_bert_tokenizer_fast(wordpiece):
    ours, reference = wordpiece
    texts = LINES + squad_contexts() + gutenberg_lines()[::40]
    texts = [text for text in texts if not needs_reference_path(text)]
    assert len(texts) > 2000
    got = ours.encode_batch_with_offsets(texts)
    expected = hugging_face(reference, texts)
    different = [i for i in range(len(texts)) if got[i] != expected[i]]
    assert not different, [(texts[i], got[i], expected[i]) for i in different[:3]]
    assert [ids for ids, _ in got] == ours.encode_batch(texts)


def test_python_path_gives_the_offsets_of_hugging_face(wordpiece):
    """U+0378 (unassigned: BERT deletes it) in front sends a line down the Python path; every
    offset must then be Hugging Face's for the line, one character later."""
    ours, reference = wordpiece
    texts = LINES + squad_contexts()[::10] + gutenberg_lines()[::400]
    texts = [text for text in texts if not needs_reference_path(text)]
    prefixed = ["\u0378" + text for text in texts]
    assert all(map(needs_reference_path, prefixed))
    got = ours.encode_batch_with_offsets(prefixed)
    for text, (ids, offsets), (ref_ids, ref_offsets) in zip(
        texts, got, hugging_face(reference, texts), strict=True
    ):
        assert ids == ref_ids, text
        assert offsets == [(start + 1, end + 1) for start, end in ref_offsets], text


def test_python_path_spans_cover_their_text(wordpiece):
    ours, reference = wordpiece
    texts = REFERENCE_PATH_LINES + [t for t in squad_contexts() if needs_reference_path(t)]
    assert all(map(needs_reference_path, texts))
    got = ours.encode_batch_with_offsets(texts)
    assert [ids for ids, _ in got] == ours.encode_batch(texts)
    for text, (ids, offsets) in zip(texts, got, strict=True):
        check_spans(ours, text, ids, offsets)
    # Where Hugging Face reads the same pieces, its offsets; not where a combining mark follows
    # a letter: NFC makes them one character here, so the span holds both (Hugging Face's ends
    # before the mark).
    same = 0
    for text, (ids, offsets), (ref_ids, ref_offsets) in zip(
        texts, got, hugging_face(reference, texts), strict=True
    ):
        if ids == ref_ids and not any(map(unicodedata.combining, text)):
            same += 1
            assert offsets == ref_offsets
    assert same >= 3


def test_fast_path_spans_cover_their_text(wordpiece):
    ours, _ = wordpiece
    got = ours.encode_batch_with_offsets(LINES)
    for text, (ids, offsets) in zip(LINES, got, strict=True):
        check_spans(ours, text, ids, offsets)


def test_hand_worked_wordpiece_offsets(wordpiece):
    ours, _ = wordpiece
    text = "Café  naïve e\u0301t\u0301e 北京 [SEP] " + "z" * 101 + " ΟΔΟΣ."
    (ids, offsets), (split_ids, split_offsets) = [
        ours.encode_batch_with_offsets([text], split_special_tokens=flag)[0]
        for flag in (False, True)
    ]
    pieces = [(ours.id_to_token(i), text[s:e]) for i, (s, e) in zip(ids, offsets, strict=True)]
    assert ("[SEP]", "[SEP]") in pieces  # a special token written in the text keeps its span
    assert ("[UNK]", "z" * 101) in pieces  # a word over 100 characters: one [UNK] for all of it
    assert (pieces[-1][1], pieces[0][1][:2]) == (".", "Ca")
    assert "[SEP]" not in [ours.id_to_token(i) for i in split_ids]
    assert split_ids == ours.encode_batch([text], split_special_tokens=True)[0]
    sep = text.index("[SEP]")
    read = [text[s:e] for s, e in split_offsets if sep <= s < sep + 5]
    assert (read[0], "".join(read[1:-1]), read[-1]) == ("[", "SEP", "]")
    # A letter's span holds its combining marks (composed by NFC, or stripped when uncased).
    expected = ["e\u0301t\u0301", "e"] if ours.lowercase else ["e\u0301", "t", "\u0301", "e"]
    accents = text.index("e\u0301t")
    assert [text[s:e] for s, e in offsets if accents <= s < accents + 5] == expected
    assert ours.encode_batch_with_offsets(["", "  \t "]) == [([], []), ([], [])]


# --- SentencePiece -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentencepiece_model(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("spm") / "cased"
    corpus = write_slice(tmp_path_factory.mktemp("corpus"))
    return train_sentencepiece(
        [corpus], str(prefix), 2000, lowercase=False, input_sentence_size=20_000
    )


def test_sentencepiece_offsets_by_hand(sentencepiece_model):
    ours = load_tokenizer(sentencepiece_model)
    text = "é 北京  Ab😀c\u00a0x"
    (ids, offsets), *_ = ours.encode_batch_with_offsets([text, "", "  "])
    assert ids == ours.encode(text)
    pieces = [(ours.id_to_token(i), text[s:e]) for i, (s, e) in zip(ids, offsets, strict=True)]
    # Characters, not UTF-8 bytes (é is 2 bytes, 北 3, 😀 4); "▁" pieces lose their space
    # unless it is all they hold.
    assert [p for _, p in pieces if p.strip()] == ["é", "北京", "A", "b", "😀", "c", "x"]
    assert offsets[-1] == (len(text) - 1, len(text))
    assert ours.encode_batch_with_offsets(["", "  "]) == [([], []), ([], [])]


def trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """A span without the whitespace at its ends, unless that is all it holds."""
    inner = text[start:end]
    if not inner.strip():
        return start, end
    return start + len(inner) - len(inner.lstrip()), end - len(inner) + len(inner.rstrip())


def test_sentencepiece_offsets_match_the_processor(sentencepiece_model):
    ours = load_tokenizer(sentencepiece_model)
    raw = spm.SentencePieceProcessor(model_file=sentencepiece_model)
    texts = LINES + REFERENCE_PATH_LINES + gutenberg_lines()[::100]
    got = ours.encode_batch_with_offsets(texts)
    assert [ids for ids, _ in got] == ours.encode_batch(texts)
    for text, (ids, offsets) in zip(texts, got, strict=True):
        proto = raw.encode(text, out_type="serialized_proto")
        pieces = sentencepiece_pb2.SentencePieceText.FromString(proto).pieces
        assert [piece.id for piece in pieces] == ids
        data = text.encode("utf-8")
        for piece, (start, end) in zip(pieces, offsets, strict=True):
            # The processor's byte span, in characters, less the whitespace around it.
            whole = data[piece.begin : piece.end].decode("utf-8")
            assert text[start:end] == (whole.strip() or whole), (text, piece.piece)
            assert len(text[:start].encode("utf-8")) >= piece.begin


def test_sentencepiece_offsets_match_its_offset_mapping(sentencepiece_model):
    """sentencepiece >= 0.2.1 computes character offsets itself (`offset_mapping`)."""
    ours = load_tokenizer(sentencepiece_model)
    raw = spm.SentencePieceProcessor(model_file=sentencepiece_model)
    texts = LINES + REFERENCE_PATH_LINES
    try:
        mappings = [raw.encode(text, return_type="offset_mapping") for text in texts]
    except (TypeError, ValueError) as e:
        pytest.skip(f"sentencepiece {spm.__version__} has no offset_mapping: {e}")
    for text, (ids, offsets), mapping in zip(
        texts, ours.encode_batch_with_offsets(texts), mappings, strict=True
    ):
        assert ids == list(mapping["ids"])
        assert offsets == [trimmed(text, s, e) for s, e in mapping["offsets"]], text
