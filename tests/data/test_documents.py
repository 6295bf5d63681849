"""Decoding (invalid UTF-8 counted, CRLF, BOM) and documents/sentences for each format."""

from __future__ import annotations

import json

import pytest

from bert_jax.data.corpus_readers import CorpusSpec, Segment
from bert_jax.data.documents import DocumentReader, decode
from bert_jax.errors import UserError


def _docs(fmt, data, **kw):
    reader = DocumentReader(CorpusSpec(format=fmt, inputs=("x",), **kw))
    docs = list(reader.documents(Segment("corpus.txt", 1, data, at_start=True)))
    return docs, reader.replacements


def test_decode_counts_each_invalid_sequence_but_not_real_replacement_chars():
    latin1 = "café naïve Brunetière".encode("latin-1")  # 3 lone high bytes
    truncated = "日本".encode()[:-1]  # one multi-byte character cut short
    real = "\ufffd already there".encode()
    text, replaced = decode(latin1 + b" " + truncated + b" " + real)
    assert replaced == 4
    assert text.count("\ufffd") == 5
    assert decode("é".encode())[1] == 0


def test_decode_line_ends_and_byte_order_mark():
    assert decode(b"\xef\xbb\xbfa\r\nb\rc\n", at_start=True) == ("a\nb\nc\n", 0)
    assert decode(b"\xef\xbb\xbfa", at_start=False)[0] == "\ufeffa"


def test_lines_format_is_one_sentence_per_line():
    data = b"  First sentence.  \r\nSecond one.\r\n\r\n\r\nOnly sentence.\n \t \nA.\nB.\nC."
    docs, _ = _docs("lines", data)
    assert docs == [["First sentence.", "Second one."], ["Only sentence."], ["A.", "B.", "C."]]


PROSE = (
    b"Mr. Smith went to\r\nWashington. He was\r\ntired! Was he happy?\r\n\r\n"
    b"Dr. Hood read the paper\nat 3 p.m. today.\n\n\n"
    b"Caf\xe9 au lait.\n"
)


def test_prose_paragraphs_are_joined_then_split_into_sentences():
    docs, replaced = _docs("prose", PROSE, prose_documents="paragraph")
    assert docs == [
        ["Mr. Smith went to Washington.", "He was tired!", "Was he happy?"],
        ["Dr. Hood read the paper at 3 p.m. today."],
        ["Caf\ufffd au lait."],
    ]
    assert replaced == 1
    whole, _ = _docs("prose", PROSE)
    assert whole == [[s for d in docs for s in d]]


def test_jsonl_documents_and_fields():
    lines = [
        {"text": "One. Two.\nThird line\n\nFourth.", "id": 1},
        {"body": "ignored", "text": ""},
        {"text": "Lone \ud800 surrogate."},
    ]
    data = "\n".join(json.dumps(x) for x in lines).encode() + b"\n\n"
    docs, replaced = _docs("jsonl", data)
    assert docs == [["One.", "Two.", "Third line", "Fourth."], [], ["Lone \ufffd surrogate."]]
    assert replaced == 1
    docs, _ = _docs("jsonl", b'{"body": "Other field."}', text_field="body")
    assert docs == [["Other field."]]


@pytest.mark.parametrize(
    "line, message",
    [
        (b"{not json", r"corpus.txt:3: not valid JSON"),
        (b'{"title": "x"}', r"corpus.txt:3: no field --text_field=text \(found: title\)"),
        (b"[1, 2]", r"corpus.txt:3: no field --text_field=text \(found: list\)"),
        (b'{"text": 5}', r"corpus.txt:3: field text is int, not a string"),
    ],
)
def test_jsonl_errors_name_file_and_line(line, message):
    with pytest.raises(UserError, match=message):
        _docs("jsonl", b'{"text": "fine"}\n\n' + line + b"\n")
