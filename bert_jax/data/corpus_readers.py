"""Find a corpus's sources and cut them into parts: the units of work `prepare` hands to workers.

Formats (`CorpusSpec.format`):
  lines  original BERT layout: one sentence per line, a blank line between documents
  prose  plain prose, paragraphs separated by blank lines (lines inside one are joined); each file
         is one document, or each paragraph is (`prose_documents="paragraph"`)
  jsonl  one JSON object per line; `text_field` holds a document (each line of it a paragraph)
  tfds   a TensorFlow Datasets text dataset by name; `text_field` of each example is a document

Files are read through `bert_jax.paths`, so local paths and gs:// (globs too) work alike. Big files
are read in blocks cut at a document boundary (a blank line, or a newline for JSON Lines), so no
document is ever split between two parts and no part needs the whole file in memory. How the corpus
is cut does not change the output: documents are ordered by a hash of their content later.

TFDS input is the one read left to TensorFlow: `tensorflow_datasets` reads its record files with
tf.data, through TensorFlow's own filesystem (and its metadata through etils.epath, which
`bert_jax.paths` points at gcsfs). So a TFDS `data_dir` on gs:// needs real credentials:
TensorFlow's GCS client cannot be pointed at an emulator, and TensorFlow's in-memory ram:// cannot
stand in either, since epath does not go through TensorFlow here. Tests use a local data_dir.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from bert_jax import paths
from bert_jax.errors import UserError

FORMATS = ("lines", "prose", "jsonl", "tfds")
PROSE_DOCUMENTS = ("file", "paragraph")
DEFAULT_PART_BYTES = 16 << 20

_BLANK_LINE = re.compile(rb"\n[ \t]*\r?\n")


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """What to read and how to find documents and sentences in it."""

    format: str
    inputs: tuple[str, ...]  # file globs; for tfds one dataset name such as "wikipedia/20231101.en"
    text_field: str = "text"  # jsonl and tfds
    prose_documents: str = "file"  # prose: "file" or "paragraph"
    language: str = "en"  # sentence splitter language (prose, jsonl, tfds)
    data_dir: str | None = None  # tfds
    split: str = "train"  # tfds


@dataclasses.dataclass(frozen=True)
class Source:
    name: str  # a file path, or "dataset:split" for tfds
    nbytes: int  # file size, or the split's size as TFDS reports it
    examples: int = 0  # tfds only


@dataclasses.dataclass
class Segment:
    """Whole documents from one source: raw bytes of a file, or one text per TFDS example."""

    source: str
    first_line: int  # 1-based line of data[0] in the file; example index for tfds
    data: bytes | list[bytes]
    at_start: bool  # data begins at the start of the file (a UTF-8 byte order mark may lead)


@dataclasses.dataclass
class Part:
    index: int
    segments: list[Segment]
    nbytes: int


def validate(spec: CorpusSpec) -> None:
    if spec.format not in FORMATS:
        raise UserError(f"--format={spec.format} is not one of {', '.join(FORMATS)}")
    if spec.prose_documents not in PROSE_DOCUMENTS:
        raise UserError(f"--prose_documents={spec.prose_documents} is not file or paragraph")
    if not spec.inputs or not all(spec.inputs):
        raise UserError(f"--input={','.join(spec.inputs)!r} names no input")
    if spec.format == "tfds" and len(spec.inputs) != 1:
        raise UserError(f"--format=tfds takes one dataset name, got {len(spec.inputs)}")


def list_sources(spec: CorpusSpec) -> list[Source]:
    """The files the globs match (each glob's matches sorted), or the TFDS split; never empty."""
    validate(spec)
    if spec.format == "tfds":
        return [_tfds_source(spec)]
    sources, seen = [], set()
    for pattern in spec.inputs:
        try:
            matches = [p for p in paths.glob(pattern) if not paths.path(p).is_dir()]
            if not matches:
                raise UserError(f"--input {pattern} matches no files")
            for path in matches:
                if path not in seen:
                    seen.add(path)
                    sources.append(Source(path, paths.path(path).stat().length))
        except OSError as e:
            raise UserError(paths.describe_error(pattern, e)) from e
    return sources


def iter_parts(
    spec: CorpusSpec, sources: list[Source], part_bytes: int = DEFAULT_PART_BYTES
) -> Iterator[Part]:
    """Parts of about `part_bytes` each, in a fixed order: small files grouped, big ones cut."""
    segments = (
        _tfds_segments(spec, sources[0], part_bytes)
        if spec.format == "tfds"
        else (seg for s in sources for seg in _file_segments(spec, s.name, part_bytes))
    )
    index, pending, size = 0, [], 0
    for segment in segments:
        pending.append(segment)
        size += _segment_bytes(segment)
        if size >= part_bytes:
            yield Part(index, pending, size)
            index, pending, size = index + 1, [], 0
    if pending:
        yield Part(index, pending, size)


def _segment_bytes(segment: Segment) -> int:
    if isinstance(segment.data, bytes):
        return len(segment.data)
    return sum(len(text) for text in segment.data)


def _cut(data: bytes, format_: str, prose_documents: str) -> int:
    """Length of the longest prefix of `data` that ends at a document boundary (0: none)."""
    if format_ == "jsonl":
        return data.rfind(b"\n") + 1
    if format_ == "prose" and prose_documents == "file":
        return 0  # the whole file is one document
    # Search only the tail first: blank lines are frequent, so one is almost always near the end.
    for start in (max(0, len(data) - (1 << 16)), 0):
        ends = [m.end() for m in _BLANK_LINE.finditer(data, start)]
        if ends:
            return ends[-1]
    return 0


def _file_segments(spec: CorpusSpec, path: str, block: int) -> Iterator[Segment]:
    line, at_start, carry = 1, True, b""
    with paths.path(path).open("rb") as f:
        while chunk := f.read(block):
            data = carry + chunk
            cut = _cut(data, spec.format, spec.prose_documents)
            if cut == 0:
                carry = data
                continue
            yield Segment(path, line, data[:cut], at_start)
            line += data.count(b"\n", 0, cut)
            at_start, carry = False, data[cut:]
    if carry:
        yield Segment(path, line, carry, at_start)


# ---------------------------------------------------------------------------------------------
# TensorFlow Datasets


def _tfds_builder(spec: CorpusSpec):
    from bert_jax.data.shard_reader import tensorflow_datasets

    tfds = tensorflow_datasets()

    name = spec.inputs[0]
    try:
        builder = tfds.builder(name, data_dir=spec.data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise UserError(
            f"--input={name}: no such TFDS dataset ({str(e).splitlines()[0]})"
        ) from None
    if not builder.is_prepared():
        # Same as tfds.load: build (or download) it into data_dir first.
        builder.download_and_prepare()
    if spec.split not in builder.info.splits:
        raise UserError(
            f"TFDS dataset {name} has no split {spec.split!r} "
            f"(it has {', '.join(sorted(builder.info.splits))})"
        )
    feature_names = list(builder.info.features.keys())
    if spec.text_field not in feature_names:
        raise UserError(
            f"TFDS dataset {name} has no feature --text_field={spec.text_field} "
            f"(it has {', '.join(feature_names)})"
        )
    return builder


def _tfds_source(spec: CorpusSpec) -> Source:
    builder = _tfds_builder(spec)
    info = builder.info.splits[spec.split]
    return Source(
        f"{builder.info.full_name}:{spec.split}", int(info.num_bytes), int(info.num_examples)
    )


def _tfds_segments(spec: CorpusSpec, source: Source, part_bytes: int) -> Iterator[Segment]:
    """Contiguous example ranges of the split, read in order with `shuffle_files=False`."""
    from bert_jax.data.shard_reader import tensorflow

    tf = tensorflow()

    builder = _tfds_builder(spec)
    parts = max(1, -(-source.nbytes // part_bytes))
    per_part = max(1, -(-source.examples // parts))
    for start in range(0, source.examples, per_part):
        stop = min(start + per_part, source.examples)
        dataset = builder.as_dataset(split=f"{spec.split}[{start}:{stop}]", shuffle_files=False)
        dataset = dataset.map(
            lambda ex, field=spec.text_field: ex[field], num_parallel_calls=tf.data.AUTOTUNE
        )
        texts = [t for batch in dataset.batch(1024).as_numpy_iterator() for t in batch]
        yield Segment(source.name, start, texts, at_start=False)
