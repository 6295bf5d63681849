"""Sources and parts: globs, and big files cut only at document boundaries."""

from __future__ import annotations

import re

import pytest

from bert_jax.data.corpus_readers import CorpusSpec, iter_parts, list_sources
from bert_jax.errors import UserError


def _spec(fmt, *inputs, **kw):
    return CorpusSpec(format=fmt, inputs=tuple(str(i) for i in inputs), **kw)


def _segments(spec, part_bytes):
    return [
        seg for part in iter_parts(spec, list_sources(spec), part_bytes) for seg in part.segments
    ]


def test_globs_sorted_deduplicated_and_sized(tmp_path):
    for name in ("b.txt", "a.txt", "c.md"):
        (tmp_path / name).write_text(name)
    (tmp_path / "sub").mkdir()
    spec = _spec("lines", f"{tmp_path}/*.txt", f"{tmp_path}/a.txt", f"{tmp_path}/*")
    sources = list_sources(spec)
    assert [s.name.rsplit("/", 1)[1] for s in sources] == ["a.txt", "b.txt", "c.md"]
    assert [s.nbytes for s in sources] == [5, 5, 4]


def test_no_match_and_bad_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"nothing-\*\.txt matches no files"):
        list_sources(_spec("lines", f"{tmp_path}/nothing-*.txt"))
    with pytest.raises(UserError, match="--format=xml"):
        list_sources(_spec("xml", tmp_path))
    with pytest.raises(UserError, match="--prose_documents=page"):
        list_sources(_spec("prose", tmp_path, prose_documents="page"))


@pytest.mark.parametrize("crlf", [False, True])
def test_big_file_cut_at_blank_lines_only(tmp_path, crlf):
    nl = "\r\n" if crlf else "\n"
    docs = [nl.join(f"doc {d} sentence {s}." for s in range(d % 7 + 1)) for d in range(300)]
    data = (nl + nl).join(docs).encode() + nl.encode()
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    segments = _segments(_spec("lines", path), part_bytes=500)
    assert len(segments) > 10
    assert b"".join(s.data for s in segments) == data
    for seg in segments[:-1]:
        assert re.search(rb"\n\r?\n$", seg.data), seg.data[-20:]
    # Line numbers: each segment knows the file line it starts on.
    position = 0
    for seg in segments:
        assert seg.first_line == data[:position].count(b"\n") + 1
        position += len(seg.data)
    assert [s.at_start for s in segments] == [True] + [False] * (len(segments) - 1)


def test_jsonl_cut_at_newlines_prose_file_never_cut(tmp_path):
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("".join(f'{{"text": "line {i}"}}\n' for i in range(100)))
    segments = _segments(_spec("jsonl", jsonl), part_bytes=64)
    assert len(segments) > 10 and all(s.data.endswith(b"\n") for s in segments)
    prose = tmp_path / "book.txt"
    prose.write_text("Para one.\n\nPara two.\n\n" * 50)
    assert len(_segments(_spec("prose", prose), part_bytes=64)) == 1
    assert len(_segments(_spec("prose", prose, prose_documents="paragraph"), 64)) > 10


def test_small_files_grouped_into_parts(tmp_path):
    for i in range(10):
        (tmp_path / f"{i}.txt").write_text(f"file {i}\n")
    spec = _spec("lines", f"{tmp_path}/*.txt")
    parts = list(iter_parts(spec, list_sources(spec), part_bytes=20))
    assert [len(p.segments) for p in parts] == [3, 3, 3, 1]
    assert [p.index for p in parts] == [0, 1, 2, 3]
