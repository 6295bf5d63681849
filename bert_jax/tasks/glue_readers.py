"""GLUE examples from the TSV files as GLUE distributes them, or from TensorFlow Datasets.

The TSVs are read as BERT's run_classifier.py reads them: tab-separated, quote characters taken
literally (they are text, not CSV quoting: `"the witness"` keeps its quotes), UTF-8 with MRPC's
byte-order mark dropped. Columns are found by header name (CoLA train/dev have no header; their
layout is in `glue_tasks`).

A few rows of the real QQP train.tsv have the wrong number of columns (a question broken over
lines). `read_split` skips such rows and returns them as `Skipped` records beside the examples,
for the caller to report; more than 1% of a file malformed is an error, since then the file
itself is not the layout expected.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Mapping

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.tasks.glue_tasks import Columns, GlueTask

# Above this fraction of rows with the wrong column count the file is wrong, not a few rows.
MAX_MALFORMED_FRACTION = 0.01


@dataclasses.dataclass(frozen=True)
class Example:
    # Labeled files: the row's position in the file (0-based, after any header; skipped rows
    # keep their numbers). Test files: GLUE's own id from the `index`/`id` column, the key of
    # the submission file.
    index: int
    text_a: str
    text_b: str | None
    label: int | float | None  # index into task.labels; float for STS-B; None for test splits


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A row left out of a split, with the reason; `str()` is one line for a log."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path} line {self.line}: {self.reason}"


# --- TSV --------------------------------------------------------------------------------------


def split_path(task: GlueTask, data_dir: paths.PathLike, split: str) -> paths.Path:
    """The file of `split`: `data_dir/<task folder>/<file>` (data_dir is GLUE's root), else
    `data_dir/<file>` (data_dir is the task's own folder, as BERT's scripts take it)."""
    task.check_split(split)
    root = paths.path(data_dir)
    name = task.files[split]
    candidates = (root / task.dir_name / name, root / name)
    try:
        for candidate in candidates:
            if candidate.is_file():
                return candidate
    except OSError as e:
        raise UserError(paths.describe_error(root, e)) from e
    raise UserError(
        f"GLUE {task.dir_name} {split} split expects {candidates[0]} "
        f"(or {candidates[1]}): file not found"
    )


def read_split(
    task: GlueTask, data_dir: paths.PathLike, split: str
) -> tuple[list[Example], list[Skipped]]:
    """The examples of one split, in file order, and the rows skipped for a wrong column count.

    Raises UserError for a missing file, a header without the expected columns, a label outside
    the task's label set, a score that is not a number, or more than 1% malformed rows.
    """
    path = split_path(task, data_dir, split)
    return parse_tsv(task, split, _read_text(path), source=str(path))


def read_embedded(task: GlueTask, split: str) -> list[Example]:
    """The examples of a split of an embedded task, generated (`bert_jax.data.doc_source`) and
    read as its TSV file would be."""
    task.check_split(split)
    if not task.embedded:
        raise UserError(f"GLUE task {task.name} is not embedded: set data.data_dir")
    from bert_jax.data import doc_source

    text = doc_source.tsv_text(split)
    source = f"embedded {task.dir_name}/{task.files[split]}"
    examples, skipped = parse_tsv(task, split, text, source=source)
    if skipped:  # the generator writes one sentence per row, never a tab inside it
        raise UserError(f"{skipped[0]}: generated row with a tab inside its sentence")
    return examples


def _read_text(path: paths.Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(paths.describe_error(path, e)) from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path} line {line}: not UTF-8 text (byte {e.start})") from None


def parse_tsv(
    task: GlueTask, split: str, text: str, source: str
) -> tuple[list[Example], list[Skipped]]:
    """`read_split` on a file's text; `source` names the file in messages."""
    columns = task.columns(split)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = columns.implied_header or _read_header(reader, columns, source)
    position = {name: header.index(name) for name in columns.required}
    label_ids = {label: i for i, label in enumerate(task.labels or ())}
    examples: list[Example] = []
    skipped: list[Skipped] = []
    rows = 0
    for row in reader:
        if not row:  # a blank line, as at the end of some files
            continue
        row_number, rows = rows, rows + 1
        line = reader.line_num  # QUOTE_NONE: one record per physical line
        if len(row) != len(header):
            reason = f"{len(row)} columns, expected {len(header)} ({' | '.join(header)})"
            skipped.append(Skipped(source, line, reason))
            continue
        where = f"{source} line {line}"
        examples.append(
            Example(
                index=(
                    _int_id(row[position[columns.index]], columns.index, where)
                    if columns.index
                    else row_number
                ),
                text_a=row[position[columns.text_a]],
                text_b=row[position[columns.text_b]] if columns.text_b else None,
                label=(
                    _label(task, label_ids, row[position[columns.label]], where)
                    if columns.label
                    else None
                ),
            )
        )
    if len(skipped) > MAX_MALFORMED_FRACTION * rows:
        raise UserError(
            f"{source}: {len(skipped)} of {rows} rows have the wrong number of columns "
            f"(first: line {skipped[0].line}, {skipped[0].reason}); more than "
            f"{MAX_MALFORMED_FRACTION:.0%} is not GLUE's {task.dir_name} {split} layout"
        )
    return examples, skipped


def _read_header(reader, columns: Columns, source: str) -> tuple[str, ...]:
    header = next(reader, None)
    if header is None:
        raise UserError(
            f"{source} is empty (expected a header line: {' | '.join(columns.required)})"
        )
    missing = [name for name in columns.required if name not in header]
    if missing:
        raise UserError(
            f"{source} line 1: header lacks {' | '.join(missing)} "
            f"(expected columns {' | '.join(columns.required)}; found {' | '.join(header)})"
        )
    return tuple(header)


def _int_id(value: str, column: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{where}: {column} {value!r} is not an integer id") from None


def _label(task: GlueTask, label_ids: dict[str, int], value: str, where: str) -> int | float:
    if task.is_regression:
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise UserError(f"{where}: {task.dir_name} score {value!r} is not a number")
        return score
    if value not in label_ids:
        raise UserError(
            f"{where}: label {value!r} is not one of {task.dir_name}'s labels "
            f"{' '.join(task.labels)}"
        )
    return label_ids[value]


# --- TensorFlow Datasets ------------------------------------------------------------------------


def read_tfds_split(
    task: GlueTask, split: str, data_dir: paths.PathLike | None = None
) -> list[Example]:
    """The examples of one split from TFDS's `glue/<task>` (downloaded and prepared into
    `data_dir` on first use, as `tfds.load` does), ordered by their row index."""
    task.check_split(split)
    if not task.tfds_name:
        raise UserError(f"{task.name} is not in TensorFlow Datasets (set data.tfds=False)")
    from bert_jax.data.shard_reader import tensorflow_datasets

    tfds = tensorflow_datasets()

    try:
        dataset = tfds.load(
            task.tfds_name, split=task.tfds_splits[split], data_dir=data_dir, shuffle_files=False
        )
    except Exception as e:  # TFDS raises many types (not found, network, bad data_dir)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"cannot load TFDS {task.tfds_name} split {task.tfds_splits[split]} "
            f"(data_dir {data_dir}): {first_line}"
        ) from e
    examples = [example_from_tfds(task, record) for record in tfds.as_numpy(dataset)]
    # TFDS stores records in hashed-key order; the file's order is the index order.
    return sorted(examples, key=lambda example: example.index)


def example_from_tfds(task: GlueTask, record: Mapping) -> Example:
    """One TFDS GLUE record (`idx`, `label`, the task's text features; text as bytes or str)
    as an Example. TFDS marks unlabeled rows with label -1; its class order is mapped to
    BERT's (they differ for MNLI and AX)."""
    name_a, name_b = task.tfds_text
    raw = record["label"]
    if task.is_regression:
        label = None if float(raw) == -1 else float(raw)
    elif int(raw) == -1:
        label = None
    elif 0 <= int(raw) < len(task.tfds_labels):
        label = task.labels.index(task.tfds_labels[int(raw)])
    else:
        raise UserError(
            f"TFDS {task.tfds_name} record {int(record['idx'])}: label {int(raw)} is outside "
            f"0..{len(task.tfds_labels) - 1}"
        )
    return Example(
        index=int(record["idx"]),
        text_a=_text(record[name_a]),
        text_b=_text(record[name_b]) if name_b else None,
        label=label,
    )


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
