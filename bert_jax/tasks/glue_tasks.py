"""The GLUE tasks as data: folders, files, column layouts, label orders, metrics, submission
names and their TensorFlow Datasets names. No I/O here; `glue_readers` reads what this
describes.

Label orders are those of BERT's run_classifier.py, so a label index means the same thing to a
checkpoint fine-tuned by the original code and to one fine-tuned here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from bert_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Columns:
    """Where one kind of GLUE file keeps its fields, by header name.

    `index`: the column holding GLUE's example id (test files, whose predictions are submitted
    by id); None means the row's position in the file. `implied_header`: the column names of a
    file that has no header row (CoLA train/dev).
    """

    text_a: str
    text_b: str | None = None
    label: str | None = None
    index: str | None = None
    implied_header: tuple[str, ...] | None = None

    @property
    def required(self) -> tuple[str, ...]:
        names = (self.index, self.text_a, self.text_b, self.label)
        return tuple(name for name in names if name is not None)


@dataclasses.dataclass(frozen=True)
class GlueTask:
    name: str  # lower-case key of GLUE_TASKS
    dir_name: str  # the task's folder in GLUE's download
    # Label strings as the files write them, in BERT's order; None for regression (STS-B).
    labels: tuple[str, ...] | None
    metrics: tuple[str, ...]  # names in bert_jax.tasks.metrics.METRICS
    main_metric: str  # the one used to pick checkpoints
    files: Mapping[str, str]  # split -> file name inside dir_name
    submission_files: Mapping[str, str]  # test split -> file name GLUE's server expects
    labeled_columns: Columns  # layout of train/dev files
    test_columns: Columns  # layout of test files (no label)
    tfds_name: str  # tensorflow_datasets builder, "glue/<config>"
    tfds_splits: Mapping[str, str]  # split -> TFDS split name
    tfds_text: tuple[str, str | None]  # TFDS feature names of text_a and text_b
    # TFDS's class order as the label strings of `labels` (TFDS orders MNLI differently).
    tfds_labels: tuple[str, ...] | None
    predict_with: str | None = None  # AX has no training data: the MNLI model predicts it

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        """Width of the classifier output: one score for regression."""
        return 1 if self.labels is None else len(self.labels)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    @property
    def dev_splits(self) -> tuple[str, ...]:
        return tuple(split for split in self.files if split.startswith("dev"))

    @property
    def test_splits(self) -> tuple[str, ...]:
        return tuple(split for split in self.files if split.startswith("test"))

    def columns(self, split: str) -> Columns:
        self.check_split(split)
        return self.test_columns if split.startswith("test") else self.labeled_columns

    def check_split(self, split: str) -> None:
        if split not in self.files:
            raise UserError(
                f"GLUE task {self.name} has no split {split!r} (it has: {' '.join(self.files)})"
            )


def _task(
    name: str,
    dir_name: str,
    labels,
    metrics,
    labeled: Columns,
    test: Columns,
    tfds_text,
    tfds_labels,
    submission: str,
    main_metric: str | None = None,
) -> GlueTask:
    """A task with GLUE's usual three files (train.tsv, dev.tsv, test.tsv)."""
    return GlueTask(
        name=name,
        dir_name=dir_name,
        labels=labels,
        metrics=metrics,
        main_metric=main_metric or metrics[0],
        files=MappingProxyType({"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}),
        submission_files=MappingProxyType({"test": submission}),
        labeled_columns=labeled,
        test_columns=test,
        tfds_name=f"glue/{name}",
        tfds_splits=MappingProxyType({"train": "train", "dev": "validation", "test": "test"}),
        tfds_text=tfds_text,
        tfds_labels=tfds_labels,
    )


BINARY = ("0", "1")
NLI = ("contradiction", "entailment", "neutral")  # BERT's MnliProcessor order
TFDS_NLI = ("entailment", "neutral", "contradiction")
ENTAILMENT = ("entailment", "not_entailment")
_PAIR_TEST = Columns("sentence1", "sentence2", index="index")  # RTE, WNLI, AX, MNLI test
_MNLI_LABELED = Columns("sentence1", "sentence2", label="gold_label")

GLUE_TASKS: dict[str, GlueTask] = {
    "cola": _task(
        "cola", "CoLA", BINARY, ("matthews",),
        labeled=Columns(
            "sentence", label="label",
            implied_header=("source", "label", "author_label", "sentence"),
        ),
        test=Columns("sentence", index="index"),
        tfds_text=("sentence", None), tfds_labels=BINARY, submission="CoLA.tsv",
    ),
    "sst2": _task(
        "sst2", "SST-2", BINARY, ("accuracy",),
        labeled=Columns("sentence", label="label"),
        test=Columns("sentence", index="index"),
        tfds_text=("sentence", None), tfds_labels=BINARY, submission="SST-2.tsv",
    ),
    "mrpc": _task(
        "mrpc", "MRPC", BINARY, ("f1", "accuracy"),
        labeled=Columns("#1 String", "#2 String", label="Quality"),
        test=Columns("#1 String", "#2 String", index="index"),
        tfds_text=("sentence1", "sentence2"), tfds_labels=BINARY, submission="MRPC.tsv",
    ),
    # GLUE's score for STS-B averages Pearson and Spearman (BERT's paper reports Spearman);
    # Pearson is the main metric here, the one checkpoints are chosen by, both are reported.
    "stsb": _task(
        "stsb", "STS-B", None, ("pearson", "spearman"),
        labeled=Columns("sentence1", "sentence2", label="score"),
        test=Columns("sentence1", "sentence2", index="index"),
        tfds_text=("sentence1", "sentence2"), tfds_labels=None, submission="STS-B.tsv",
    ),
    "qqp": _task(
        "qqp", "QQP", BINARY, ("f1", "accuracy"),
        labeled=Columns("question1", "question2", label="is_duplicate"),
        test=Columns("question1", "question2", index="id"),
        tfds_text=("question1", "question2"), tfds_labels=BINARY, submission="QQP.tsv",
    ),
    "mnli": GlueTask(
        name="mnli",
        dir_name="MNLI",
        labels=NLI,
        metrics=("accuracy",),
        main_metric="accuracy",
        files=MappingProxyType({
            "train": "train.tsv",
            "dev_matched": "dev_matched.tsv",
            "dev_mismatched": "dev_mismatched.tsv",
            "test_matched": "test_matched.tsv",
            "test_mismatched": "test_mismatched.tsv",
        }),
        submission_files=MappingProxyType(
            {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"}
        ),
        labeled_columns=_MNLI_LABELED,
        test_columns=_PAIR_TEST,
        tfds_name="glue/mnli",
        tfds_splits=MappingProxyType({
            "train": "train",
            "dev_matched": "validation_matched",
            "dev_mismatched": "validation_mismatched",
            "test_matched": "test_matched",
            "test_mismatched": "test_mismatched",
        }),
        tfds_text=("premise", "hypothesis"),
        tfds_labels=TFDS_NLI,
    ),
    "qnli": _task(
        "qnli", "QNLI", ENTAILMENT, ("accuracy",),
        labeled=Columns("question", "sentence", label="label"),
        test=Columns("question", "sentence", index="index"),
        tfds_text=("question", "sentence"), tfds_labels=ENTAILMENT, submission="QNLI.tsv",
    ),
    "rte": _task(
        "rte", "RTE", ENTAILMENT, ("accuracy",),
        labeled=Columns("sentence1", "sentence2", label="label"),
        test=_PAIR_TEST,
        tfds_text=("sentence1", "sentence2"), tfds_labels=ENTAILMENT, submission="RTE.tsv",
    ),
    "wnli": _task(
        "wnli", "WNLI", BINARY, ("accuracy",),
        labeled=Columns("sentence1", "sentence2", label="label"),
        test=_PAIR_TEST,
        tfds_text=("sentence1", "sentence2"), tfds_labels=BINARY, submission="WNLI.tsv",
    ),
    # The diagnostic set: test only, scored by GLUE with the three-class Matthews coefficient.
    "ax": GlueTask(
        name="ax",
        dir_name="diagnostic",
        labels=NLI,
        metrics=("matthews",),
        main_metric="matthews",
        files=MappingProxyType({"test": "diagnostic.tsv"}),
        submission_files=MappingProxyType({"test": "AX.tsv"}),
        labeled_columns=_MNLI_LABELED,
        test_columns=_PAIR_TEST,
        tfds_name="glue/ax",
        tfds_splits=MappingProxyType({"test": "test"}),
        tfds_text=("premise", "hypothesis"),
        tfds_labels=TFDS_NLI,
        predict_with="mnli",
    ),
}  # fmt: skip


def glue_task(name: str) -> GlueTask:
    """The task called `name` (case and '-' ignored: "SST-2", "sst2", "STS-B" all work)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in GLUE_TASKS:
        raise UserError(f"unknown GLUE task {name!r} (known: {' '.join(GLUE_TASKS)})")
    return GLUE_TASKS[key]
