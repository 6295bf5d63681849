"""CoNLL-2003 NER data: the original files (eng.train, eng.testa, eng.testb) or TFDS `conll2003`.

The original layout: one `word POS chunk NER` line per word (the tag is the last column), a blank
line between sentences, and a `-DOCSTART- -X- O O` line before each document. Every word line of
a file must have the same number of columns; a line that does not stops the read with its file
and line. Tags are read in the files' scheme (IOB1 in the originals, IOB2 in TFDS) and rewritten
in the scheme the task trains with (`ner_metrics.to_scheme`: the entities stay the same; in
IOB1 this also regularises eng.train's two B-MISC that follow an O into I-MISC).
"""

from __future__ import annotations

import dataclasses

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.tasks import ner_metrics

DOCSTART = "-DOCSTART-"
# The task's split -> the original file and the TFDS split.
FILES = {"train": "eng.train", "testa": "eng.testa", "testb": "eng.testb"}
TFDS_SPLITS = {"train": "train", "testa": "dev", "testb": "test"}


@dataclasses.dataclass(frozen=True)
class Sentence:
    words: tuple[str, ...]
    tags: tuple[str, ...]
    file: str  # where it was read (a TFDS split reads as "tfds:conll2003/dev")
    line: int  # 1-based line of its first word (TFDS: the record's position)
    starts_document: bool = False  # the first sentence after a -DOCSTART- line


def read_file(path: paths.PathLike, scheme: str | None = None) -> list[Sentence]:
    """The sentences of one CoNLL file, tags rewritten in `scheme` when given."""
    name = str(path)
    try:
        # Bytes decoded here: epath's read_text ignores `encoding` (the locale's would apply).
        text = paths.path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"CoNLL file {name} does not exist") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    sentences = parse_lines(text.splitlines(), name)
    return with_scheme(sentences, scheme) if scheme else sentences


def parse_lines(lines: list[str], name: str) -> list[Sentence]:
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    first_line, new_document, columns = 0, False, None

    def close():
        nonlocal words, tags, new_document
        if words:
            sentences.append(Sentence(tuple(words), tuple(tags), name, first_line, new_document))
            words, tags, new_document = [], [], False

    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            close()
            continue
        if fields[0] == DOCSTART:
            close()
            new_document = True
            continue
        if columns is None:
            if len(fields) < 2:
                raise UserError(
                    f"{name} line {number}: {len(fields)} column, expected a word and a tag "
                    "(`word POS chunk NER` in CoNLL-2003)"
                )
            columns = len(fields)
        elif len(fields) != columns:
            raise UserError(
                f"{name} line {number}: {len(fields)} columns, expected {columns} as on the "
                f"file's first word line (`word POS chunk NER`)"
            )
        try:
            ner_metrics.split_tag(fields[-1])
        except UserError as e:
            raise UserError(f"{name} line {number}: {e}") from None
        if not words:
            first_line = number
        words.append(fields[0])
        tags.append(fields[-1])
    close()
    return sentences


def with_scheme(sentences: list[Sentence], scheme: str) -> list[Sentence]:
    tags = ner_metrics.to_scheme([s.tags for s in sentences], scheme)
    return [dataclasses.replace(s, tags=tuple(t)) for s, t in zip(sentences, tags, strict=True)]


def read_split(data, split: str) -> list[Sentence]:
    """A task split ("train", "testa", "testb") from `data` (the config's data section: the
    files in `data_dir`, or TFDS with `data.tfds`), in the scheme `data.scheme`."""
    if split not in FILES:
        raise UserError(f"CoNLL-2003 has no split {split!r}: one of {', '.join(FILES)}")
    if data.tfds:
        sentences = read_tfds_split(TFDS_SPLITS[split], data.tfds_data_dir or None)
    elif not data.data_dir:
        raise UserError(
            "data.data_dir is empty: set --config.data.data_dir=DIR (holding eng.train, "
            "eng.testa, eng.testb) or --config.data.tfds=True"
        )
    else:
        sentences = read_file(paths.path(data.data_dir) / FILES[split])
    if not sentences:
        raise UserError(f"CoNLL-2003 {split} holds no sentences")
    return with_scheme(sentences, data.scheme)


def read_tfds_split(split: str, data_dir: paths.PathLike | None = None) -> list[Sentence]:
    """The sentences of TFDS `conll2003` split `split` (train, dev, test), tag names from the
    dataset's `ner` feature, in the order TFDS stores them (metrics do not depend on it)."""
    from bert_jax.data.shard_reader import tensorflow_datasets

    tfds = tensorflow_datasets()

    try:
        dataset, info = tfds.load(
            "conll2003", split=split, data_dir=data_dir, shuffle_files=False, with_info=True
        )
    except Exception as e:  # TFDS raises many types (not found, network, bad data_dir)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"cannot load TFDS conll2003 split {split} (data_dir {data_dir}): {first_line}"
        ) from e
    names = list(info.features["ner"].feature.names)
    name = f"tfds:conll2003/{split}"
    sentences = []
    for number, record in enumerate(tfds.as_numpy(dataset), start=1):
        words = tuple(_text(w) for w in record["tokens"])
        if not words:  # TFDS keeps an empty record where a file ends with blank lines
            continue
        ids = [int(i) for i in record["ner"]]
        if any(not 0 <= i < len(names) for i in ids):
            raise UserError(f"{name} record {number}: a tag id outside 0..{len(names) - 1}")
        sentences.append(Sentence(words, tuple(names[i] for i in ids), name, number))
    return sentences


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
