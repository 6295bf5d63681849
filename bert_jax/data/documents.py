"""Turn a part's raw text into documents, each a list of sentences (strings).

Decoding: bytes are read as UTF-8 with errors="replace"; each invalid sequence (Latin-1 text, a
truncated character) becomes U+FFFD and is counted. CRLF and lone CR line ends become LF, and a
byte order mark at the start of a file is dropped.

Sentence splitting (prose, jsonl, tfds) uses `sentencex`, a rule-based, deterministic splitter
(compiled, ~100 MB/s, ~300 languages) with per-language abbreviation lists: it does not split after
"Mr." or "e.g.", and keeps a quotation that holds several sentences together. It is given one
paragraph at a time:
  prose        paragraphs are separated by blank lines; the lines of one are joined with spaces
               (prose files are usually hard-wrapped)
  jsonl, tfds  every non-blank line of the text is a paragraph (such text is not hard-wrapped)
In the lines format each non-blank line is a sentence, as in the original BERT data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib.metadata import version

from bert_jax.data.corpus_readers import CorpusSpec, Segment
from bert_jax.errors import UserError

_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT_BYTES = "\ufffd".encode()


def sentence_splitter(spec: CorpusSpec) -> str:
    """How sentences were found, for metadata.json."""
    if spec.format == "lines":
        return "one sentence per line"
    return f"sentencex {version('sentencex')} ({spec.language}), one paragraph at a time"


def decode(data: bytes, at_start: bool = False) -> tuple[str, int]:
    """UTF-8 text with LF line ends, and how many invalid byte sequences were replaced."""
    text = data.decode("utf-8", errors="replace")
    # A U+FFFD that was in the input is the 3 bytes EF BF BD: every other one is a replacement.
    replaced = text.count("\ufffd") - data.count(_REPLACEMENT_BYTES)
    if at_start and text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n"), replaced


def _clean_json_text(text: str) -> tuple[str, int]:
    """JSON may escape lone surrogates ("\\ud800"), which are not text: replace and count them."""
    cleaned, count = _SURROGATE.subn("\ufffd", text)
    return cleaned, count


class DocumentReader:
    """Documents of one corpus spec; `replacements` counts invalid UTF-8 seen so far."""

    def __init__(self, spec: CorpusSpec):
        from sentencex import segment

        self.spec = spec
        self.replacements = 0
        self._segment = segment

    def documents(self, segment: Segment) -> Iterator[list[str]]:
        """Each document as its non-empty sentences (a document may have none)."""
        fmt = self.spec.format
        if fmt == "tfds":
            for raw in segment.data:
                text, bad = decode(raw)
                self.replacements += bad
                yield self.text_sentences(text)
            return
        text, bad = decode(segment.data, segment.at_start)
        self.replacements += bad
        if fmt == "lines":
            yield from _blocks(text.split("\n"), joiner=None)
        elif fmt == "prose" and self.spec.prose_documents == "file":
            yield [s for p in _blocks(text.split("\n"), " ") for s in self.split(p[0])]
        elif fmt == "prose":
            for (paragraph,) in _blocks(text.split("\n"), " "):
                yield self.split(paragraph)
        else:
            yield from self._jsonl(text, segment)

    def split(self, paragraph: str) -> list[str]:
        return [s for s in (s.strip() for s in self._segment(self.spec.language, paragraph)) if s]

    def text_sentences(self, text: str) -> list[str]:
        """Sentences of a text whose every line is a paragraph (JSON Lines and TFDS documents)."""
        return [s for line in text.split("\n") if line.strip() for s in self.split(line.strip())]

    def _jsonl(self, text: str, segment: Segment) -> Iterator[list[str]]:
        field = self.spec.text_field
        for offset, line in enumerate(text.split("\n")):
            if not line.strip():
                continue
            where = f"{segment.source}:{segment.first_line + offset}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(record, dict) or field not in record:
                keys = ", ".join(record) if isinstance(record, dict) else type(record).__name__
                raise UserError(f"{where}: no field --text_field={field} (found: {keys})")
            value = record[field]
            if not isinstance(value, str):
                raise UserError(f"{where}: field {field} is {type(value).__name__}, not a string")
            value, bad = _clean_json_text(value.replace("\r\n", "\n").replace("\r", "\n"))
            self.replacements += bad
            yield self.text_sentences(value)


def _blocks(lines: list[str], joiner: str | None) -> Iterator[list[str]]:
    """Runs of non-blank lines, stripped: as a list of lines, or joined into one paragraph."""
    block: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped:
            block.append(stripped)
        elif block:
            yield block if joiner is None else [joiner.join(" ".join(b.split()) for b in block)]
            block = []
    if block:
        yield block if joiner is None else [joiner.join(" ".join(b.split()) for b in block)]
