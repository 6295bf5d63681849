"""CoNLL-2003 reader: the real files in ../shared/data/conll2003 (sentence counts, checked
against a plain split of the lines), fixture files for documents, schemes and each error, and the
TFDS mapping through a stand-in module."""

from __future__ import annotations

import sys
import types

import pytest

from bert_jax.errors import UserError
from bert_jax.tasks import conll, ner_metrics
from tests.conftest import shared_path

FIXTURE = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Smith NNP I-NP B-PER


-DOCSTART- -X- O O

Paris NNP I-NP I-LOC
"""


def plain_split(text: str) -> list[tuple[list[str], list[str]]]:
    """Sentences as the reference script reads them (blank and -DOCSTART- lines end one)."""
    sentences, words, tags = [], [], []
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
                words, tags = [], []
            continue
        words.append(parts[0])
        tags.append(parts[-1])
    if words:
        sentences.append((words, tags))
    return sentences


@pytest.mark.parametrize(
    "name,count,documents",
    [("eng.train", 14041, 946), ("eng.testa", 3250, 216), ("eng.testb", 3453, 231)],
)
def test_real_files(name, count, documents):
    path = shared_path("conll2003", name)
    sentences = conll.read_file(path)
    assert len(sentences) == count
    assert sum(s.starts_document for s in sentences) == documents
    reference = plain_split(path.read_text())
    assert [(list(s.words), list(s.tags)) for s in sentences] == reference
    lines = path.read_text().splitlines()
    for s in sentences[:: max(1, count // 50)]:  # each sentence's line is its first word's
        assert lines[s.line - 1].split()[0] == s.words[0]
        assert s.file == str(path)


def test_train_tags_are_iob1_and_convert_to_iob2():
    sentences = conll.read_file(shared_path("conll2003", "eng.train"))
    tags = {t for s in sentences for t in s.tags}
    assert tags == {"O", "I-PER", "I-ORG", "I-LOC", "I-MISC", "B-LOC", "B-MISC", "B-ORG"}
    iob2 = conll.with_scheme(sentences, "iob2")
    assert {t for s in iob2 for t in s.tags} == {"O"} | {
        f"{p}-{k}" for p in "BI" for k in ("PER", "ORG", "LOC", "MISC")
    }
    assert ner_metrics.entities([s.tags for s in iob2]) == ner_metrics.entities(
        [s.tags for s in sentences]
    )
    # Back to IOB1: the file's tags, except two B-MISC that follow an O (irregular in IOB1, the
    # same chunks as I-MISC there).
    back = conll.with_scheme(iob2, "iob1")
    changed = [
        (a.line, a.tags, b.tags) for a, b in zip(sentences, back, strict=True) if a.tags != b.tags
    ]
    assert [(line, a.count("B-MISC"), b.count("B-MISC")) for line, a, b in changed] == [
        (152416, 1, 0),
        (175432, 1, 0),
    ]
    assert conll.with_scheme(sentences, "iob1") == back


def test_fixture_documents_lines_and_schemes(tmp_path):
    path = tmp_path / "eng.testa"
    path.write_text(FIXTURE)
    sentences = conll.read_file(path)
    assert [(s.words, s.tags, s.line, s.starts_document) for s in sentences] == [
        (("EU", "rejects", "German"), ("I-ORG", "O", "I-MISC"), 3, True),
        (("Peter", "Blackburn", "Smith"), ("I-PER", "I-PER", "B-PER"), 7, False),
        (("Paris",), ("I-LOC",), 14, True),
    ]
    iob2 = conll.read_file(path, scheme="iob2")
    assert [s.tags for s in iob2] == [
        ("B-ORG", "O", "B-MISC"),
        ("B-PER", "I-PER", "B-PER"),
        ("B-LOC",),
    ]
    assert [s.tags for s in conll.read_file(path, scheme="iob1")] == [s.tags for s in sentences]


def test_two_column_files_and_crlf(tmp_path):
    path = tmp_path / "two.txt"
    path.write_bytes(b"John B-PER\r\nlives O\r\n\r\nRome B-LOC\r\n")
    sentences = conll.read_file(path, scheme="iob1")
    assert [s.tags for s in sentences] == [("I-PER", "O"), ("I-LOC",)]


@pytest.mark.parametrize(
    "text,message",
    [
        ("a NN I-NP O\nb NN O\n", r"bad line 2: 3 columns, expected 4 as on the file's first"),
        (
            "-DOCSTART- -X- O O\n\na NN I-NP O\n\nb NN I-NP O x\n",
            r"bad line 5: 5 columns, expected 4",
        ),
        ("lonely\n", r"bad line 1: 1 column, expected a word and a tag"),
        ("a NN I-NP PER\n", r"bad line 1: tag 'PER' is not O, B-TYPE or I-TYPE"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as error:
        conll.read_file(path)
    assert "\n" not in str(error.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(UserError, match="CoNLL file .*nope does not exist"):
        conll.read_file(tmp_path / "nope")
    (tmp_path / "latin").write_bytes(b"caf\xe9 NN I-NP O\n")
    with pytest.raises(UserError, match="latin: not UTF-8 text"):
        conll.read_file(tmp_path / "latin")


def data_section(**fields):
    values = {"tfds": False, "tfds_data_dir": "", "data_dir": "", "scheme": "iob1", **fields}
    return types.SimpleNamespace(**values)


def test_read_split_from_a_folder(tmp_path):
    (tmp_path / "eng.testb").write_text(FIXTURE)
    sentences = conll.read_split(data_section(data_dir=str(tmp_path), scheme="iob2"), "testb")
    assert sentences[0].tags == ("B-ORG", "O", "B-MISC")
    with pytest.raises(UserError, match="eng.train does not exist"):
        conll.read_split(data_section(data_dir=str(tmp_path)), "train")
    with pytest.raises(UserError, match="data.data_dir is empty"):
        conll.read_split(data_section(), "train")
    with pytest.raises(UserError, match="no split 'dev'"):
        conll.read_split(data_section(data_dir=str(tmp_path)), "dev")
    (tmp_path / "eng.testa").write_text("-DOCSTART- -X- O O\n\n")
    with pytest.raises(UserError, match="testa holds no sentences"):
        conll.read_split(data_section(data_dir=str(tmp_path)), "testa")


def test_tfds_through_a_stand_in(monkeypatch):
    """The loading code against a stand-in `tensorflow_datasets` (no network, no TensorFlow)."""
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    records = {
        "dev": [
            {"tokens": [b"EU", b"rejects"], "ner": [3, 0]},
            {"tokens": [b"Peter", b"Blackburn", b"Smith"], "ner": [1, 2, 1]},
            {"tokens": [], "ner": []},  # TFDS's empty last record
        ],
        "test": [{"tokens": [b"x"], "ner": [9]}],
    }
    calls = []
    info = types.SimpleNamespace(
        features={"ner": types.SimpleNamespace(feature=types.SimpleNamespace(names=names))}
    )

    def load(name, split, data_dir, shuffle_files, with_info):
        calls.append((name, split, data_dir, shuffle_files, with_info))
        if split == "train":
            raise FileNotFoundError("no such dataset\nmore detail")
        return records[split], info

    stand_in = types.SimpleNamespace(load=load, as_numpy=lambda dataset: iter(dataset))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", stand_in)
    sentences = conll.read_split(data_section(tfds=True, tfds_data_dir="/tfds"), "testa")
    assert calls == [("conll2003", "dev", "/tfds", False, True)]
    assert [(s.words, s.tags, s.file, s.line) for s in sentences] == [
        (("EU", "rejects"), ("I-ORG", "O"), "tfds:conll2003/dev", 1),
        (("Peter", "Blackburn", "Smith"), ("I-PER", "I-PER", "B-PER"), "tfds:conll2003/dev", 2),
    ]
    iob2 = conll.read_split(data_section(tfds=True, scheme="iob2"), "testa")
    assert [s.tags for s in iob2] == [("B-ORG", "O"), ("B-PER", "I-PER", "B-PER")]
    with pytest.raises(UserError, match=r"tfds:conll2003/test record 1: a tag id outside 0..8"):
        conll.read_split(data_section(tfds=True), "testb")
    with pytest.raises(
        UserError, match=r"cannot load TFDS conll2003 split train .* no such dataset$"
    ):
        conll.read_split(data_section(tfds=True), "train")
