"""SWAG examples from the CSV files as the dataset distributes them (train.csv, val.csv, test.csv).

The layout (rowanz/swagaf `data/`): comma-separated with a header line, fields that hold commas
or quotes double-quoted (csv's default dialect), columns found by name:

  video-id, fold-ind, startphrase, sent1, sent2, gold-source, ending0..ending3, label

(the files also carry a leading unnamed index column, which is ignored). test.csv has no `label`.
A question is `sent1`, the context, and four candidate second sentences, each `sent2` (the
beginning all four share) followed by one `ending`; `label` is the index of the right one.
"""

from __future__ import annotations

import csv
import dataclasses
import io

from bert_jax import paths
from bert_jax.errors import UserError

NUM_CHOICES = 4
ENDINGS = tuple(f"ending{i}" for i in range(NUM_CHOICES))
TEXT_COLUMNS = ("fold-ind", "sent1", "sent2", *ENDINGS)
FILES = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}
LABELLED = ("train", "val")


@dataclasses.dataclass(frozen=True)
class SwagExample:
    index: int  # the row's position in its file (0-based, after the header)
    id: str  # the `fold-ind` column: SWAG's own id of the question
    context: str  # sent1
    endings: tuple[str, ...]  # the candidate second sentences: sent2 + " " + ending_i
    label: int | None  # index of the right ending; None in test.csv


def split_path(data_dir: paths.PathLike, split: str) -> paths.Path:
    if split not in FILES:
        raise UserError(f"SWAG has no split {split!r}; one of {', '.join(FILES)}")
    return paths.path(data_dir) / FILES[split]


def read_split(data_dir: paths.PathLike, split: str) -> list[SwagExample]:
    """The examples of `data_dir`/train.csv, val.csv or test.csv, in file order. train and val
    must have labels."""
    path = split_path(data_dir, split)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"SWAG {split} split expects {path}: file not found") from None
    except OSError as e:
        raise UserError(paths.describe_error(path, e)) from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path} line {line}: not UTF-8 text (byte {e.start})") from None
    return parse_csv(text, source=str(path), labelled=split in LABELLED)


def parse_csv(text: str, source: str, labelled: bool) -> list[SwagExample]:
    """`read_split` on a file's text; `source` names the file in messages. Lines are physical
    lines of the file (a quoted field may span several)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise UserError(
            f"{source} is empty (expected a header line with {', '.join(TEXT_COLUMNS)})"
        )
    required = (*TEXT_COLUMNS, "label") if labelled else TEXT_COLUMNS
    missing = [name for name in required if name not in header]
    if missing:
        raise UserError(
            f"{source} line 1: header lacks {', '.join(missing)} (found {', '.join(header)})"
        )
    position = {name: header.index(name) for name in header}
    examples: list[SwagExample] = []
    line = reader.line_num + 1  # where the next record starts
    for row in reader:
        where, line = f"{source} line {line}", reader.line_num + 1
        if not row:  # a blank line, as at the end of some files
            continue
        if len(row) != len(header):
            raise UserError(
                f"{where}: {len(row)} columns, expected {len(header)} as the header names"
            )
        field = {name: row[i] for name, i in position.items()}
        examples.append(
            SwagExample(
                index=len(examples),
                id=field["fold-ind"],
                context=field["sent1"],
                endings=tuple(f"{field['sent2']} {field[name]}" for name in ENDINGS),
                label=_label(field["label"], where) if labelled else None,
            )
        )
    return examples


def _label(value: str, where: str) -> int:
    if value.strip() not in {str(i) for i in range(NUM_CHOICES)}:
        raise UserError(f"{where}: label {value!r} is not an ending index 0..{NUM_CHOICES - 1}")
    return int(value)
