"""The embedded fine-tuning task: balanced labels, train and dev split by document, GLUE's
layout, and read through the GLUE reader when no data_dir is given."""

import collections

import ml_collections

from bert_jax.data import doc_source
from bert_jax.tasks import glue, glue_readers
from bert_jax.tasks.glue_tasks import glue_task


def test_splits_are_balanced_disjoint_and_deterministic():
    examples = doc_source.examples()
    assert examples is doc_source.examples()  # generated once a process
    sizes = {}
    for split, rows in examples.items():
        counts = collections.Counter(label for _, label in rows)
        assert set(counts) == set(doc_source.LABELS)
        assert counts["docstring"] == counts["reference"]  # the majority class is 50%
        sizes[split] = len(rows)
        assert len({sentence for sentence, _ in rows}) == len(rows)
        words = [len(sentence.split()) for sentence, _ in rows]
        assert min(words) >= doc_source.MIN_WORDS and max(words) <= doc_source.MAX_WORDS
    assert sizes["train"] > 3000 and sizes["dev"] > 500
    train = {sentence for sentence, _ in examples["train"]}
    assert not train & {sentence for sentence, _ in examples["dev"]}


def test_no_document_gives_sentences_to_both_splits():
    by_split = doc_source._documents_by_split(doc_source.SEED)
    train = {(doc.source, doc.name) for doc in by_split["train"]}
    dev = {(doc.source, doc.name) for doc in by_split["dev"]}
    assert train and dev and not train & dev
    for label in doc_source.LABELS:
        held = sum(len(doc.sentences) for doc in by_split["dev"] if doc.source == label)
        total = held + sum(len(doc.sentences) for doc in by_split["train"] if doc.source == label)
        assert doc_source.DEV_SHARE <= held / total < doc_source.DEV_SHARE + 0.1


def test_written_files_read_as_the_embedded_task(tmp_path):
    task = glue_task("docsource")
    assert task.embedded and task.labels == doc_source.LABELS and task.dev_splits == ("dev",)
    data_dir = doc_source.write(tmp_path)
    header = (tmp_path / "DocSource" / "dev.tsv").read_text().split("\n", 1)[0]
    assert header == "sentence\tlabel"
    for split in ("train", "dev"):
        from_files, skipped = glue_readers.read_split(task, data_dir, split)
        assert not skipped
        assert from_files == glue_readers.read_embedded(task, split)
        expected = [
            (s, doc_source.LABELS.index(label)) for s, label in doc_source.examples()[split]
        ]
        assert [(e.text_a, e.label) for e in from_files] == expected


def test_glue_reads_the_embedded_task_without_a_data_dir(tmp_path):
    task = glue_task("doc-source")
    data = ml_collections.ConfigDict({"tfds": False, "tfds_data_dir": "", "data_dir": ""})
    dev = glue.read_examples(task, data, "dev", warn=print)
    assert len(dev) == len(doc_source.examples()["dev"])
    doc_source.write(tmp_path)
    data.data_dir = str(tmp_path)  # the files, once written, read the same
    assert glue.read_examples(task, data, "dev", warn=print) == dev
