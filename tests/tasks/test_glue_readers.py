"""GLUE task table and readers: the real files in ../shared/data/glue (counts, first rows, checked
against a plain split on tabs), fixture files in every layout GLUE uses, each error message, and
the TFDS record mapping."""

from __future__ import annotations

import sys
import types

import pytest

from bert_jax.errors import UserError
from bert_jax.tasks.glue_readers import (
    Example,
    Skipped,
    example_from_tfds,
    read_split,
    read_tfds_split,
)
from bert_jax.tasks.glue_tasks import GLUE_TASKS, glue_task
from bert_jax.tasks.metrics import METRICS
from tests.conftest import shared_path

MNLI_TEXT_HEADER = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
]  # fmt: skip


def write_tsv(root, folder: str, name: str, lines: list[list[str]], bom: bool = False) -> None:
    directory = root / folder
    directory.mkdir(parents=True, exist_ok=True)
    text = "".join("\t".join(fields) + "\n" for fields in lines)
    (directory / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


def read(task: str, root, split: str) -> list[Example]:
    examples, skipped = read_split(glue_task(task), root, split)
    assert skipped == []
    return examples


# --- the task table -------------------------------------------------------------------------


def test_task_table():
    assert list(GLUE_TASKS) == [
        "cola",
        "sst2",
        "mrpc",
        "stsb",
        "qqp",
        "mnli",
        "qnli",
        "rte",
        "wnli",
        "ax",
    ]
    for name, task in GLUE_TASKS.items():
        assert task.name == name
        assert task.tfds_name == f"glue/{name}"
        assert task.main_metric in task.metrics
        assert set(task.metrics) <= set(METRICS)
        assert set(task.submission_files) == set(task.test_splits)
        assert set(task.tfds_splits) == set(task.files)
        if task.labels is not None:
            assert sorted(task.tfds_labels) == sorted(task.labels)
    # BERT's run_classifier.py label orders.
    assert glue_task("mnli").labels == ("contradiction", "entailment", "neutral")
    assert glue_task("rte").labels == glue_task("qnli").labels == ("entailment", "not_entailment")
    assert glue_task("cola").labels == glue_task("wnli").labels == ("0", "1")
    stsb = glue_task("STS-B")
    assert (stsb.is_regression, stsb.num_labels, stsb.main_metric) == (True, 1, "pearson")
    assert glue_task("mrpc").metrics == ("f1", "accuracy")
    assert glue_task("cola").main_metric == "matthews"


def test_mnli_and_ax_files():
    mnli, ax = glue_task("mnli"), glue_task("ax")
    assert dict(mnli.files) == {
        "train": "train.tsv",
        "dev_matched": "dev_matched.tsv",
        "dev_mismatched": "dev_mismatched.tsv",
        "test_matched": "test_matched.tsv",
        "test_mismatched": "test_mismatched.tsv",
    }
    assert mnli.dev_splits == ("dev_matched", "dev_mismatched")
    assert dict(mnli.submission_files) == {
        "test_matched": "MNLI-m.tsv",
        "test_mismatched": "MNLI-mm.tsv",
    }
    assert mnli.tfds_splits["dev_mismatched"] == "validation_mismatched"
    assert (ax.dir_name, dict(ax.files), ax.predict_with) == (
        "diagnostic",
        {"test": "diagnostic.tsv"},
        "mnli",
    )
    assert ax.dev_splits == ()
    submissions = [n for task in GLUE_TASKS.values() for n in task.submission_files.values()]
    glue_names = [
        "CoLA",
        "SST-2",
        "MRPC",
        "STS-B",
        "QQP",
        "MNLI-m",
        "MNLI-mm",
        "QNLI",
        "RTE",
        "WNLI",
        "AX",
    ]
    assert sorted(submissions) == sorted(f"{name}.tsv" for name in glue_names)


def test_unknown_task_and_split():
    with pytest.raises(
        UserError, match=r"unknown GLUE task 'squad' \(known: cola sst2 .* ax docsource\)"
    ):
        glue_task("squad")
    with pytest.raises(
        UserError, match=r"task mrpc has no split 'validation' \(it has: train dev test\)"
    ):
        read_split(glue_task("mrpc"), "/nonexistent", "validation")


# --- the real files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glue_dir():
    return shared_path("glue")


@pytest.mark.parametrize(
    "task, counts",
    [
        ("cola", {"train": 8551, "dev": 1043}),
        ("sst2", {"train": 67349, "dev": 872}),
        ("mrpc", {"train": 3668, "dev": 408, "test": 1725}),
        ("stsb", {"train": 5749, "dev": 1500}),
    ],
)
def test_real_counts_and_plain_split(glue_dir, task, counts):
    """Every row equals a plain tab split of its line (GLUE's quotes are text, never quoting)."""
    task = glue_task(task)
    for split, count in counts.items():
        examples = read(task.name, glue_dir, split)
        assert len(examples) == count
        path = glue_dir / task.dir_name / task.files[split]
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        lines = lines if task.name == "cola" and split != "test" else lines[1:]
        assert len(lines) == count
        header = path.read_text(encoding="utf-8-sig").splitlines()[0].split("\t")
        columns = task.columns(split)
        names = columns.implied_header or header
        for example, line in zip(examples, lines, strict=True):
            fields = dict(zip(names, line.split("\t"), strict=True))
            assert example.text_a == fields[columns.text_a]
            assert example.text_b == (fields[columns.text_b] if columns.text_b else None)
            if split == "test":
                assert (example.index, example.label) == (int(fields["index"]), None)
            elif task.is_regression:
                assert example.label == float(fields["score"])
            else:
                assert task.labels[example.label] == fields[columns.label]


def test_real_first_rows(glue_dir):
    cola = read("cola", glue_dir, "train")
    assert cola[0] == Example(
        0, "Our friends won't buy this analysis, let alone the next one we propose.", None, 1
    )
    assert sum(e.label for e in cola) == 6023  # CoLA train: 6,023 acceptable of 8,551
    sst2 = read("sst2", glue_dir, "dev")
    assert sst2[1] == Example(1, "unflinchingly bleak and desperate ", None, 0)
    mrpc_dev = read("mrpc", glue_dir, "dev")
    assert mrpc_dev[0].text_a.startswith("He said the foodservice pie business")
    assert "\ufeff" not in mrpc_dev[0].text_a
    assert mrpc_dev[0].text_b == (
        '"The foodservice pie business does not fit our long-term growth strategy.'
    )
    assert mrpc_dev[0].label == 1 and mrpc_dev[1].label == 0
    mrpc_test = read("mrpc", glue_dir, "test")
    assert [e.index for e in mrpc_test] == list(range(1725))
    assert mrpc_test[0].text_b.startswith("Current Chief Operating Officer Mike Butcher")
    stsb = read("stsb", glue_dir, "dev")
    assert stsb[1] == Example(
        1, "A young child is riding a horse.", "A child is riding a horse.", 4.75
    )


def test_task_folder_as_data_dir(glue_dir):
    """BERT's scripts take the task's own folder as data_dir; both work."""
    assert read("mrpc", glue_dir / "MRPC", "dev") == read("mrpc", glue_dir, "dev")


# --- every layout, on fixture files ---------------------------------------------------------


def test_cola_and_sst2_test_files(tmp_path):
    write_tsv(tmp_path, "CoLA", "test.tsv", [["index", "sentence"], ["0", "Bill left."]])
    write_tsv(tmp_path, "SST-2", "test.tsv", [["index", "sentence"], ["7", 'a "great" film ']])
    write_tsv(tmp_path, "CoLA", "train.tsv", [["gj04", "0", "*", "Left Bill."]])
    assert read("cola", tmp_path, "test") == [Example(0, "Bill left.", None, None)]
    assert read("cola", tmp_path, "train") == [Example(0, "Left Bill.", None, 0)]
    assert read("sst2", tmp_path, "test") == [Example(7, 'a "great" film ', None, None)]


def test_stsb_test_file(tmp_path):
    header = [
        "index",
        "genre",
        "filename",
        "year",
        "old_index",
        "source1",
        "source2",
        "sentence1",
        "sentence2",
    ]
    row = ["3", "main-news", "headlines", "2015", "0001", "none", "none", "A b.", "C d."]
    write_tsv(tmp_path, "STS-B", "test.tsv", [header, row])
    assert read("stsb", tmp_path, "test") == [Example(3, "A b.", "C d.", None)]


def test_qqp_skips_a_few_malformed_rows(tmp_path):
    header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    rows = [
        [str(i), str(2 * i), str(2 * i + 1), f"q{i}?", f"r{i}?", str(i % 2)] for i in range(150)
    ]
    rows[40] = ["40", "80", "81", "a question broken over"]  # 4 columns of 6
    write_tsv(tmp_path, "QQP", "train.tsv", [header, *rows])
    examples, skipped = read_split(glue_task("qqp"), tmp_path, "train")
    assert len(examples) == 149
    assert examples[40] == Example(41, "q41?", "r41?", 1)  # later rows keep their numbers
    path = str(tmp_path / "QQP" / "train.tsv")
    assert skipped == [Skipped(path, 42, skipped[0].reason)]
    assert str(skipped[0]).startswith(f"{path} line 42: 4 columns, expected 6")

    write_tsv(tmp_path, "QQP", "test.tsv", [["id", "question1", "question2"], ["12", "a?", "b?"]])
    assert read("qqp", tmp_path, "test") == [Example(12, "a?", "b?", None)]


def test_too_many_malformed_rows_is_an_error(tmp_path):
    header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    rows = [[str(i), "1", "2", "a?", "b?", "0"] for i in range(100)]
    rows[10] = rows[20] = ["x", "y"]
    write_tsv(tmp_path, "QQP", "train.tsv", [header, *rows])
    with pytest.raises(UserError, match=r"train.tsv: 2 of 100 rows have the wrong number of col"):
        read_split(glue_task("qqp"), tmp_path, "train")


def test_mnli_files(tmp_path):
    texts = ["(p)", "(h)", "( p )", "( h )", "The cat sat.", "A cat sat."]
    train = [MNLI_TEXT_HEADER + ["label1", "gold_label"], ["0", "1", "1e", "fiction", *texts]]
    train[1] += ["neutral", "neutral"]
    dev = [MNLI_TEXT_HEADER + [f"label{i}" for i in range(1, 6)] + ["gold_label"]]
    dev.append(["5", "1", "1c", "slate", *texts, *["contradiction"] * 5, "contradiction"])
    test = [MNLI_TEXT_HEADER, ["9", "1", "1n", "travel", *texts]]
    write_tsv(tmp_path, "MNLI", "train.tsv", train)
    write_tsv(tmp_path, "MNLI", "dev_mismatched.tsv", dev)
    write_tsv(tmp_path, "MNLI", "test_matched.tsv", test)
    assert read("mnli", tmp_path, "train") == [Example(0, "The cat sat.", "A cat sat.", 2)]
    assert read("mnli", tmp_path, "dev_mismatched") == [Example(0, "The cat sat.", "A cat sat.", 0)]
    assert read("mnli", tmp_path, "test_matched") == [
        Example(9, "The cat sat.", "A cat sat.", None)
    ]


@pytest.mark.parametrize(
    "task, folder, header, labels",
    [
        ("qnli", "QNLI", ["index", "question", "sentence"], ["entailment", "not_entailment"]),
        ("rte", "RTE", ["index", "sentence1", "sentence2"], ["not_entailment", "entailment"]),
        ("wnli", "WNLI", ["index", "sentence1", "sentence2"], ["1", "0"]),
    ],
)
def test_indexed_pair_files(tmp_path, task, folder, header, labels):
    rows = [[str(i), f"first {i}", f"second {i}", label] for i, label in enumerate(labels)]
    write_tsv(tmp_path, folder, "train.tsv", [[*header, "label"], *rows])
    write_tsv(tmp_path, folder, "test.tsv", [header, ["4", "one", "two"]])
    order = glue_task(task).labels
    assert read(task, tmp_path, "train") == [
        Example(i, f"first {i}", f"second {i}", order.index(label))
        for i, label in enumerate(labels)
    ]
    assert read(task, tmp_path, "test") == [Example(4, "one", "two", None)]


def test_ax_diagnostic(tmp_path):
    lines = [["index", "sentence1", "sentence2"], ["0", "The cat sat.", "The cat did not sit."]]
    write_tsv(tmp_path, "diagnostic", "diagnostic.tsv", lines)
    assert read("ax", tmp_path, "test") == [
        Example(0, "The cat sat.", "The cat did not sit.", None)
    ]


def test_bom_and_blank_lines(tmp_path):
    lines = [["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"], ["1", "7", "8", '"a', 'b"']]
    write_tsv(tmp_path, "MRPC", "train.tsv", [*lines, [""]], bom=True)
    assert read("mrpc", tmp_path, "train") == [Example(0, '"a', 'b"', 1)]


# --- error messages -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    expected = (
        f"GLUE RTE dev split expects {tmp_path}/RTE/dev.tsv .or {tmp_path}/dev.tsv.: file not"
    )
    with pytest.raises(UserError, match=expected):
        read_split(glue_task("rte"), tmp_path, "dev")


def test_header_without_expected_columns(tmp_path):
    write_tsv(tmp_path, "RTE", "dev.tsv", [["index", "premise", "hypothesis", "label"]])
    with pytest.raises(UserError) as error:
        read_split(glue_task("rte"), tmp_path, "dev")
    assert str(error.value) == (
        f"{tmp_path}/RTE/dev.tsv line 1: header lacks sentence1 | sentence2 (expected columns "
        "sentence1 | sentence2 | label; found index | premise | hypothesis | label)"
    )


def test_label_outside_label_set(tmp_path):
    rows = [["index", "sentence1", "sentence2", "label"], ["0", "a", "b", "entailment"]]
    write_tsv(tmp_path, "RTE", "dev.tsv", [*rows, ["1", "a", "b", "neutral"]])
    with pytest.raises(UserError) as error:
        read_split(glue_task("rte"), tmp_path, "dev")
    assert str(error.value) == (
        f"{tmp_path}/RTE/dev.tsv line 3: label 'neutral' is not one of RTE's labels "
        "entailment not_entailment"
    )


def test_headerless_cola_with_a_bad_label(tmp_path):
    write_tsv(tmp_path, "CoLA", "dev.tsv", [["src", "label", "", "sentence"]])
    with pytest.raises(UserError, match=r"dev.tsv line 1: label 'label' is not one of CoLA's"):
        read_split(glue_task("cola"), tmp_path, "dev")


@pytest.mark.parametrize("score", ["high", "", "nan"])
def test_non_numeric_score(tmp_path, score):
    header = "index genre filename year old_index source1 source2 sentence1 sentence2 score"
    row = ["0", "g", "f", "2012", "0", "none", "none", "a", "b", score]
    write_tsv(tmp_path, "STS-B", "dev.tsv", [header.split(), row])
    with pytest.raises(UserError, match=rf"dev.tsv line 2: STS-B score '{score}' is not a number"):
        read_split(glue_task("stsb"), tmp_path, "dev")


def test_non_integer_test_id(tmp_path):
    write_tsv(tmp_path, "SST-2", "test.tsv", [["index", "sentence"], ["x1", "fine"]])
    with pytest.raises(UserError, match=r"test.tsv line 2: index 'x1' is not an integer id"):
        read_split(glue_task("sst2"), tmp_path, "test")


def test_empty_and_non_utf8_files(tmp_path):
    (tmp_path / "SST-2").mkdir()
    (tmp_path / "SST-2" / "dev.tsv").write_bytes(b"")
    with pytest.raises(UserError, match=r"dev.tsv is empty \(expected a header line"):
        read_split(glue_task("sst2"), tmp_path, "dev")
    (tmp_path / "SST-2" / "dev.tsv").write_bytes(b"sentence\tlabel\ncaf\xe9\t1\n")
    with pytest.raises(UserError, match=r"dev.tsv line 2: not UTF-8 text \(byte 18\)"):
        read_split(glue_task("sst2"), tmp_path, "dev")


# --- TensorFlow Datasets ----------------------------------------------------------------------


def test_tfds_records_map_to_examples():
    # Shaped as tfds.as_numpy gives them: text as bytes, numpy scalars for idx and label.
    np = pytest.importorskip("numpy")
    record = {"idx": np.int32(3), "label": np.int64(0), "premise": b"P", "hypothesis": b"H"}
    # TFDS orders MNLI entailment, neutral, contradiction; BERT contradiction, entailment, neutral.
    assert example_from_tfds(glue_task("mnli"), record) == Example(3, "P", "H", 1)
    assert example_from_tfds(glue_task("mnli"), record | {"label": 2}).label == 0
    assert example_from_tfds(glue_task("ax"), record | {"label": -1}).label is None
    cola = {"idx": 0, "label": 1, "sentence": "Bill left."}
    assert example_from_tfds(glue_task("cola"), cola) == Example(0, "Bill left.", None, 1)
    qnli = {"idx": 5, "label": 1, "question": b"Q?", "sentence": "S."}
    assert example_from_tfds(glue_task("qnli"), qnli) == Example(5, "Q?", "S.", 1)
    qqp = {"idx": 1, "label": -1, "question1": b"a", "question2": b"b"}
    assert example_from_tfds(glue_task("qqp"), qqp) == Example(1, "a", "b", None)
    stsb = {"idx": 2, "label": np.float32(3.8), "sentence1": b"\xc3\xa9", "sentence2": b"b"}
    assert example_from_tfds(glue_task("stsb"), stsb) == Example(2, "é", "b", pytest.approx(3.8))
    assert example_from_tfds(glue_task("stsb"), stsb | {"label": -1.0}).label is None
    with pytest.raises(UserError, match=r"glue/rte record 2: label 2 is outside 0..1"):
        example_from_tfds(glue_task("rte"), stsb | {"label": 2})


def test_read_tfds_split_through_a_stand_in(monkeypatch):
    """The loading code against a stand-in `tensorflow_datasets` (no network, no TensorFlow)."""
    calls = []
    records = [
        {"idx": 1, "label": 0, "sentence1": b"c", "sentence2": b"d"},
        {"idx": 0, "label": 1, "sentence1": b"a", "sentence2": b"b"},
    ]

    def load(name, split, data_dir, shuffle_files):
        calls.append((name, split, data_dir, shuffle_files))
        if split == "test":
            raise FileNotFoundError("no such dataset\nmore detail")
        return records

    stand_in = types.SimpleNamespace(load=load, as_numpy=lambda dataset: iter(dataset))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", stand_in)
    examples = read_tfds_split(glue_task("mrpc"), "dev", data_dir="/tfds")
    assert calls == [("glue/mrpc", "validation", "/tfds", False)]
    assert examples == [Example(0, "a", "b", 1), Example(1, "c", "d", 0)]
    with pytest.raises(
        UserError, match=r"cannot load TFDS glue/mrpc split test .* no such dataset$"
    ):
        read_tfds_split(glue_task("mrpc"), "test")
    with pytest.raises(UserError, match="has no split 'dev'"):
        read_tfds_split(glue_task("mnli"), "dev")
