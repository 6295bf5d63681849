"""`bert-jax prepare` end to end: each input format, a round trip against Hugging Face's
`BertTokenizerFast`, determinism, resuming, and refusing bad input or a mixed-up OUTPUT."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import random

import pytest

from bert_jax import main as cli
from bert_jax import paths
from bert_jax.data import part_tokenizer, shard_reader, shard_writer, shards
from bert_jax.data.corpus_readers import CorpusSpec, iter_parts, list_sources
from bert_jax.data.documents import DocumentReader
from bert_jax.data.prepare import PrepareOptions, prepare
from bert_jax.errors import UserError
from bert_jax.text.load import load_tokenizer

pytest_plugins = ["tests.gcs"]

tf = pytest.importorskip("tensorflow")
transformers = pytest.importorskip("transformers", reason="BertTokenizerFast is the reference")

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()[]-"
WORDS = """
the a of and to in he she it was is said mr dr one two three sentence document
""".split()  # noqa: SIM905
SYLLABLES = "ka lo mi ne ru so ta vi ze pu".split()  # noqa: SIM905


@pytest.fixture(scope="module")
def vocab(tmp_path_factory) -> str:
    """A small WordPiece vocab: whole words, single characters, and '##' continuations."""
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    tokens = SPECIALS + WORDS + SYLLABLES + list(CHARS) + [f"##{c}" for c in CHARS]
    tokens += [f"##{s}" for s in SYLLABLES]
    path.write_text("\n".join(dict.fromkeys(tokens)) + "\n")
    return str(path)


def _sentence(rng: random.Random) -> str:
    words = [
        rng.choice(WORDS) if rng.random() < 0.5 else "".join(rng.choices(SYLLABLES, k=3))
        for _ in range(rng.randint(1, 12))
    ]
    return " ".join(words).capitalize() + rng.choice(".!?")


def _documents(n: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [[_sentence(rng) for _ in range(rng.randint(1, 6))] for _ in range(n)]


def _write_lines(path, documents, newline="\n") -> str:
    text = (newline * 2).join(newline.join(d) for d in documents) + newline
    path.write_bytes(text.encode())
    return str(path)


def _options(inputs, output, vocab, fmt="lines", **kw) -> PrepareOptions:
    corpus_kw = {k: kw.pop(k) for k in ("text_field", "prose_documents", "data_dir") if k in kw}
    spec = CorpusSpec(format=fmt, inputs=tuple(map(str, inputs)), **corpus_kw)
    kw.setdefault("num_shards", 4)
    kw.setdefault("progress", False)
    return PrepareOptions(corpus=spec, output=str(output), vocab=vocab, **kw)


def _read(output, split="train") -> list[tuple[list[int], list[int]]]:
    """(token_ids, sentence_lengths) of every record of a split, read with TensorFlow."""
    metadata = json.loads((output / "metadata.json").read_text())
    if split not in metadata["splits"]:  # no eval split
        return []
    paths = [str(output / name) for name in metadata["splits"][split]["files"]]
    records = []
    for batch in tf.data.TFRecordDataset(paths).batch(4096).as_numpy_iterator():
        for raw in batch:
            feature = tf.train.Example.FromString(raw).features.feature
            records.append(
                (
                    list(feature["token_ids"].int64_list.value),
                    list(feature["sentence_lengths"].int64_list.value),
                )
            )
    return records


def _as_documents(records) -> collections.Counter:
    """Each record as a tuple of sentences (tuples of ids), counted; checks the lengths."""
    out = collections.Counter()
    for ids, lengths in records:
        assert lengths and min(lengths) > 0 and sum(lengths) == len(ids)
        bounds = [sum(lengths[:i]) for i in range(len(lengths) + 1)]
        out[tuple(tuple(ids[a:b]) for a, b in zip(bounds, bounds[1:], strict=False))] += 1
    return out


def _reference(documents, vocab, lowercase=True) -> collections.Counter:
    """The documents tokenized sentence by sentence with BertTokenizerFast."""
    tokenizer = transformers.BertTokenizerFast(vocab, do_lower_case=lowercase)
    out = collections.Counter()
    for document in documents:
        ids = tokenizer(document, add_special_tokens=False)["input_ids"] if document else []
        sentences = tuple(tuple(s) for s in ids if s)
        if sentences:
            out[sentences] += 1
    return out


def _all_documents(output) -> collections.Counter:
    return _as_documents(_read(output, "train")) + _as_documents(_read(output, "eval"))


def _files(output) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(output.iterdir()) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# Formats and round trips


def test_lines_round_trip_against_bert_tokenizer_fast(tmp_path, vocab):
    documents = _documents(120) + [["Only one sentence."], ["\x00\x01"]]  # last: no tokens
    corpus = _write_lines(tmp_path / "corpus.txt", documents)
    summary = prepare(_options([corpus], tmp_path / "out", vocab, eval_documents=10))
    out = tmp_path / "out"
    assert _all_documents(out) == _reference(documents, vocab)
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["splits"]["eval"]["documents"] == 10
    assert metadata["splits"]["train"]["documents"] == 111
    assert metadata["splits"]["train"]["files"] == [
        f"train-0000{i}-of-00004.tfrecord" for i in range(4)
    ]
    assert metadata["splits"]["eval"]["files"] == ["eval-00000-of-00001.tfrecord"]
    assert metadata["dropped_empty_documents"] == 1
    single = sum(len(d) == 1 for d in documents[:-1])
    assert metadata["single_sentence_documents"] == single == summary["single_sentence_documents"]
    tokens = sum(len(ids) for ids, _ in _read(out, "train") + _read(out, "eval"))
    assert summary["tokens"] == tokens
    assert metadata["splits"]["train"]["tokens"] + metadata["splits"]["eval"]["tokens"] == tokens
    assert metadata["tokenizer"]["kind"] == "wordpiece" and metadata["tokenizer"]["path"] == vocab
    assert metadata["input"] == {
        "format": "lines",
        "sources": [corpus],
        "bytes": summary["input_mb"] * 1e6,
    }
    assert metadata["created_with"].startswith("bert-jax ")
    assert sorted(p.name for p in out.iterdir())[-1] == "train-00003-of-00004.tfrecord"
    assert not (out / ".prepare").exists()


def test_prose_with_crlf_and_latin1(tmp_path, vocab):
    one = "Mr. Smith said one sentence.\r\nHe said\r\ntwo!\r\n\r\nThe caf\xe9 was dr. Hood's.\r\n"
    two = "It was the document. Was it?\n\n\nA na\xefve one.\n"
    (tmp_path / "one.txt").write_bytes(one.encode("latin-1"))
    (tmp_path / "two.txt").write_bytes(two.encode("latin-1"))
    sentences_one = [
        "Mr. Smith said one sentence.",
        "He said two!",
        "The caf\ufffd was dr. Hood's.",
    ]
    sentences_two = ["It was the document.", "Was it?", "A na\ufffdve one."]
    glob = [f"{tmp_path}/*.txt"]
    summary = prepare(_options(glob, tmp_path / "files", vocab, "prose", num_shards=1))
    assert summary["invalid_utf8_replacements"] == 2
    assert _all_documents(tmp_path / "files") == _reference([sentences_one, sentences_two], vocab)
    metadata = json.loads((tmp_path / "files" / "metadata.json").read_text())
    assert metadata["invalid_utf8_replacements"] == 2
    assert metadata["sentence_splitter"].startswith("sentencex ")

    options = _options(glob, tmp_path / "paras", vocab, "prose", prose_documents="paragraph")
    prepare(options)
    paragraphs = [sentences_one[:2], sentences_one[2:], sentences_two[:2], sentences_two[2:]]
    assert _all_documents(tmp_path / "paras") == _reference(paragraphs, vocab)


def test_jsonl_text_field(tmp_path, vocab):
    documents = _documents(30, seed=1)
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "\r\n".join(json.dumps({"id": i, "body": "\n".join(d)}) for i, d in enumerate(documents))
    )
    options = _options([path], tmp_path / "out", vocab, "jsonl", text_field="body", num_shards=2)
    summary = prepare(options)
    assert summary["documents"] == 30
    assert _all_documents(tmp_path / "out") == _reference(documents, vocab)


def _tfds_builder(tfds, documents):
    """A TFDS dataset `prepare_test_docs` of `documents` (text and title features)."""

    class PrepareTestDocs(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = {"text": tfds.features.Text(), "title": tfds.features.Text()}
            return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(features))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i, document in enumerate(documents):
                yield i, {"text": "\n".join(document), "title": f"doc {i}"}

    return PrepareTestDocs


def test_tfds_dataset_by_name(tmp_path, vocab):
    tfds = pytest.importorskip("tensorflow_datasets")
    documents = _documents(25, seed=2)
    data_dir = tmp_path / "tfds"
    # Built here without network; `prepare` then finds it by name in data_dir.
    _tfds_builder(tfds, documents)(data_dir=str(data_dir)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    options = _options(
        ["prepare_test_docs"], tmp_path / "out", vocab, "tfds", data_dir=str(data_dir)
    )
    summary = prepare(options)
    assert summary["documents"] == 25
    assert _all_documents(tmp_path / "out") == _reference(documents, vocab)
    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert metadata["input"]["sources"] == ["prepare_test_docs/1.0.0:train"]
    with pytest.raises(UserError, match="no feature --text_field=body"):
        prepare(
            _options(
                ["prepare_test_docs"],
                tmp_path / "o2",
                vocab,
                "tfds",
                text_field="body",
                data_dir=str(data_dir),
            )
        )


def test_train_sentencepiece(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    documents = _documents(200, seed=3)
    corpus = _write_lines(tmp_path / "corpus.txt", documents)
    spec = CorpusSpec(format="lines", inputs=(corpus,))
    options = PrepareOptions(
        corpus=spec,
        output=str(tmp_path / "out"),
        train_sentencepiece=60,
        num_shards=2,
        progress=False,
    )
    prepare(options)
    model = tmp_path / "out" / "spm.model"
    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert metadata["tokenizer"]["kind"] == "sentencepiece"
    assert metadata["tokenizer"]["vocab_size"] == 60
    assert metadata["tokenizer"]["path"] == str(model)
    processor = spm.SentencePieceProcessor(model_file=str(model))
    expected = collections.Counter(
        tuple(tuple(s) for s in processor.encode(d) if s) for d in documents
    )
    assert _all_documents(tmp_path / "out") == expected
    mtime = model.stat().st_mtime_ns
    assert prepare(options)["reused"] and model.stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_gutenberg_with_the_real_uncased_vocab(tmp_path, gutenberg_dir, uncased_vocab):
    options = _options(
        [f"{gutenberg_dir}/*.txt"],
        tmp_path / "out",
        str(uncased_vocab),
        "prose",
        prose_documents="paragraph",
        num_shards=8,
        eval_documents=100,
        workers=2,
    )
    summary = prepare(options)
    # 7 novels: ~12k paragraphs, ~27k sentences, ~1M tokens; chesterton-ball.txt has five
    # Latin-1 bytes.
    assert 10_000 < summary["documents"] < 15_000
    assert 20_000 < summary["sentences"] < 40_000
    assert 900_000 < summary["tokens"] < 1_200_000
    assert summary["invalid_utf8_replacements"] == 5
    assert summary["eval_documents"] == 100 and summary["shards"] == 8
    reader = DocumentReader(options.corpus)
    paragraphs = [
        document
        for part in iter_parts(options.corpus, list_sources(options.corpus))
        for segment in part.segments
        for document in reader.documents(segment)
    ]
    assert len(paragraphs) == summary["documents"]
    # A random sample of paragraphs, as BertTokenizerFast tokenizes their sentences, are records.
    sample = random.Random(0).sample(paragraphs, 1500)
    records = _all_documents(tmp_path / "out")
    assert sum(records.values()) == summary["documents"]
    for document, count in _reference(sample, str(uncased_vocab)).items():
        assert records[document] >= count


def test_gs_input_vocab_and_output_through_the_emulator(
    tmp_path, vocab, gcs_bucket, capsys, monkeypatch
):
    """`prepare` reads a gs:// glob and vocab and writes gs:// shards (worker processes load the
    vocab from the bucket too), then reads them back for training: no TensorFlow filesystem."""
    documents = _documents(60, seed=5)
    for i in range(3):
        text = "\n\n".join("\n".join(d) for d in documents[i::3])
        paths.path(f"{gcs_bucket}/corpus/{i}.txt").write_text(text)
    paths.path(f"{gcs_bucket}/vocab.txt").write_bytes(pathlib.Path(vocab).read_bytes())
    args = [
        "prepare",
        f"--input={gcs_bucket}/corpus/*.txt",
        f"--vocab={gcs_bucket}/vocab.txt",
        f"--output={gcs_bucket}/shards",
        "--num_shards=4",
        "--workers=2",
        "--eval_documents=6",
    ]
    monkeypatch.chdir(tmp_path)  # a gs:// path must never become a local directory
    assert cli.main(args) == 0
    assert "60 documents (54 train, 6 eval)" in capsys.readouterr().out
    out = paths.path(f"{gcs_bucket}/shards")
    assert sorted(p.name for p in out.iterdir()) == [
        "eval-00000-of-00001.tfrecord",
        "metadata.json",
        *[f"train-0000{i}-of-00004.tfrecord" for i in range(4)],
    ]
    assert not os.listdir(tmp_path)
    metadata = shards.read_metadata(os.fspath(out))
    assert metadata["tokenizer"]["path"] == f"{gcs_bucket}/vocab.txt"
    assert metadata["input"]["sources"] == [f"{gcs_bucket}/corpus/{i}.txt" for i in range(3)]
    local = tmp_path / "copy"
    local.mkdir()
    for p in out.iterdir():
        (local / p.name).write_bytes(p.read_bytes())
    assert _all_documents(local) == _reference(documents, vocab)
    # What pretraining reads: the vocab recorded in metadata.json, and the shards, from gs://.
    tokenizer = load_tokenizer(metadata["tokenizer"]["path"])
    assert tokenizer.fingerprint == metadata["tokenizer"]["fingerprint"]
    assert len(shard_reader.list_shards(os.fspath(out), "train")) == 4
    assert cli.main(args) == 0 and "already complete" in capsys.readouterr().out
    # A missing bucket is one line naming it, exit status 2, for the output and for the input.
    missing = [*args[:-4], "--output=gs://no-such-bucket-h1/shards", *args[-3:]]
    assert cli.main(missing) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "gs://no-such-bucket-h1" in error[0]
    missing = ["prepare", "--input=gs://no-such-bucket-h1/*.txt", *args[2:]]
    assert cli.main(missing) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "gs://no-such-bucket-h1" in error[0]


# ---------------------------------------------------------------------------------------------
# Determinism and splits


def test_same_seed_same_bytes_whatever_the_workers_and_parts(tmp_path, vocab, monkeypatch):
    corpus = _write_lines(tmp_path / "corpus.txt", _documents(300))
    a = prepare(_options([corpus], tmp_path / "a", vocab, workers=1))  # one part
    b = prepare(_options([corpus], tmp_path / "b", vocab, workers=2, part_bytes=400))
    assert a["documents"] == b["documents"] == 300
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    # Shards written a few at a time, each reading a slice of every part.
    monkeypatch.setattr(shard_writer, "BATCH_BYTES", 2000)
    prepare(_options([corpus], tmp_path / "batched", vocab, workers=1, part_bytes=400))
    assert _files(tmp_path / "a") == _files(tmp_path / "batched")
    prepare(_options([corpus], tmp_path / "c", vocab, seed=1))
    assert (
        _files(tmp_path / "c")["eval-00000-of-00001.tfrecord"]
        != _files(tmp_path / "a")["eval-00000-of-00001.tfrecord"]
    )


def test_eval_fraction_shard_balance_and_duplicates(tmp_path, vocab):
    documents = _documents(800, seed=4)
    documents += documents[:100]  # repeated documents must never straddle train and eval
    corpus = _write_lines(tmp_path / "corpus.txt", documents)
    summary = prepare(_options([corpus], tmp_path / "out", vocab, eval_fraction=0.25))
    # Binomial(900 ~ 800 distinct, 0.25): 5 standard deviations either side.
    assert abs(summary["eval_documents"] - 225) < 5 * (800 * 0.25 * 0.75) ** 0.5 * 1.2
    train = _as_documents(_read(tmp_path / "out", "train"))
    held_out = _as_documents(_read(tmp_path / "out", "eval"))
    assert not set(train) & set(held_out)
    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    per_shard = [
        sum(len(ids) for ids, _ in _read_file(tmp_path / "out" / name))
        for name in metadata["splits"]["train"]["files"]
    ]
    assert max(per_shard) < 1.1 * min(per_shard)


def test_eval_split_is_never_empty(tmp_path, vocab, capsys):
    """The default fraction (1%) of a small corpus rounds to no document: one is held out; with
    none to spare, or none asked for, no eval file is written and the output says so."""
    corpus = _write_lines(tmp_path / "corpus.txt", _documents(28, seed=8))
    summary = prepare(_options([corpus], tmp_path / "small", vocab))
    assert (summary["eval_documents"], summary["train_documents"]) == (1, 27)
    assert len(_read(tmp_path / "small", "eval")) == 1
    metadata = json.loads((tmp_path / "small" / "metadata.json").read_text())
    assert metadata["eval_split"] is True and "no_eval_reason" not in metadata

    cases = {
        "one": ([["Only one document.", "Two sentences."]], {"num_shards": 1}),
        "shards": (_documents(4, seed=9), {"num_shards": 4}),
        "asked": (_documents(10, seed=9), {"eval_documents": 0}),
        "fraction": (_documents(10, seed=9), {"eval_fraction": 0.0}),
    }
    reasons = {
        "one": "the corpus has 1 document; none can be held out",
        "shards": "holding out one of 4 documents would leave too few for --num_shards=4",
        "asked": "--eval_documents=0",
        "fraction": "--eval_fraction=0",
    }
    for name, (documents, kw) in cases.items():
        text = _write_lines(tmp_path / f"{name}.txt", documents)
        summary = prepare(_options([text], tmp_path / name, vocab, **kw))
        assert summary["eval_documents"] == 0
        assert not list((tmp_path / name).glob("eval-*")), name
        metadata = json.loads((tmp_path / name / "metadata.json").read_text())
        assert metadata["eval_split"] is False and "eval" not in metadata["splits"]
        assert metadata["no_eval_reason"] == reasons[name]
        with pytest.raises(UserError, match="no eval-\\*.tfrecord shards"):
            shard_reader.list_shards(str(tmp_path / name), "eval")
    args = ["prepare", f"--input={text}", f"--vocab={vocab}", f"--output={tmp_path / 'cli'}"]
    assert cli.main([*args, "--eval_fraction=0", "--num_shards=1"]) == 0
    assert "(10 train, no eval split: --eval_fraction=0)" in capsys.readouterr().out


def test_an_old_dataset_with_an_empty_eval_file_has_no_eval_split(tmp_path, vocab):
    corpus = _write_lines(tmp_path / "corpus.txt", _documents(10, seed=9))
    out = tmp_path / "out"
    prepare(_options([corpus], out, vocab, eval_documents=2, num_shards=1))
    # As `prepare` wrote it before: an eval file of no records, recorded with 0 documents.
    (out / "eval-00000-of-00001.tfrecord").write_bytes(b"")
    metadata = json.loads((out / "metadata.json").read_text())
    metadata["splits"]["eval"].update(documents=0, sentences=0, tokens=0)
    (out / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(UserError, match="metadata.json records no eval documents"):
        shard_reader.list_shards(str(out), "eval")


@pytest.mark.parametrize("kind", ["wordpiece", "sentencepiece"])
def test_special_token_strings_in_the_corpus_are_text(tmp_path, vocab, kind):
    """As Google's create_pretraining_data.py: "[SEP]" in corpus text is "[", "sep", "]", never
    the [SEP] id, for WordPiece and SentencePiece alike."""
    specials = ["[SEP]", "[MASK]", "[CLS]", "[PAD]", "[UNK]"]
    documents = _documents(40, seed=10)
    for i, document in enumerate(documents):
        document[0] = f"{document[0]} {specials[i % 5]} a{specials[(i + 1) % 5]}b"
    corpus = _write_lines(tmp_path / "corpus.txt", documents)
    if kind == "wordpiece":
        options = _options([corpus], tmp_path / "out", vocab)
    else:
        options = _options([corpus], tmp_path / "out", None, train_sentencepiece=80)
    prepare(options)
    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    tokenizer = load_tokenizer(metadata["tokenizer"]["path"])
    found = _all_documents(tmp_path / "out")
    ids = {t for document in found for sentence in document for t in sentence}
    assert not ids & tokenizer.special_ids
    if kind == "wordpiece":  # the brackets split off as punctuation, as BERT's basic tokenizer
        spaced = [[s.replace("[", " [ ").replace("]", " ] ") for s in d] for d in documents]
        assert found == _reference(spaced, vocab)
        assert tokenizer.tokenize("x [SEP] y")[1] == "[SEP]"  # `tokenize` keeps HF's behaviour


def _read_file(path):
    out = []
    for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        example = tf.train.Example.FromString(raw)
        out.append((list(example.features.feature["token_ids"].int64_list.value), None))
    return out


# ---------------------------------------------------------------------------------------------
# Re-runs and interruptions


def test_rerun_keeps_everything(tmp_path, vocab):
    corpus = _write_lines(tmp_path / "corpus.txt", _documents(50))
    options = _options([corpus], tmp_path / "out", vocab)
    prepare(options)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    again = prepare(options)
    assert again["reused"] and again["documents"] == 50
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == before


def test_interrupted_tokenizing_resumes_with_saved_parts(tmp_path, vocab, monkeypatch):
    corpus = _write_lines(tmp_path / "corpus.txt", _documents(200))
    options = _options([corpus], tmp_path / "out", vocab, part_bytes=500)
    calls = []
    original = part_tokenizer.PartTokenizer.__call__

    def flaky(self, part):
        calls.append(part.index)
        if len(calls) == 4 and not resumed:
            raise KeyboardInterrupt
        return original(self, part)

    monkeypatch.setattr(part_tokenizer.PartTokenizer, "__call__", flaky)
    resumed = False
    with pytest.raises(KeyboardInterrupt):
        prepare(options)
    assert not (tmp_path / "out" / "metadata.json").exists()
    assert not list((tmp_path / "out").glob("*.tfrecord"))
    resumed, calls[:] = True, []
    prepare(options)
    assert calls and calls[0] == 3  # parts 0-2 were kept
    prepare(_options([corpus], tmp_path / "clean", vocab))
    assert _files(tmp_path / "out") == _files(tmp_path / "clean")


def test_interrupted_shard_writing_resumes_and_ignores_temporary_files(
    tmp_path, vocab, monkeypatch
):
    corpus = _write_lines(tmp_path / "corpus.txt", _documents(200))
    options = _options([corpus], tmp_path / "out", vocab)
    out = tmp_path / "out"
    path_type = type(paths.path(out))
    rename = path_type.replace
    renamed = []

    def flaky_rename(self, target):
        if os.fspath(target).endswith(".tfrecord"):
            renamed.append(target)
            if len(renamed) == 4:  # eval and two train shards are done, the third is written
                raise KeyboardInterrupt
        return rename(self, target)

    monkeypatch.setattr(path_type, "replace", flaky_rename)
    with pytest.raises(KeyboardInterrupt):
        prepare(options)
    monkeypatch.setattr(path_type, "replace", rename)
    assert not (out / "metadata.json").exists()
    finished = sorted(p.name for p in out.glob("*.tfrecord"))
    assert finished == ["eval-00000-of-00001.tfrecord"] + [
        f"train-0000{i}-of-00004.tfrecord" for i in range(2)
    ]
    assert (out / ".train-00002-of-00004.tfrecord.tmp").exists()  # complete but never renamed
    # A damaged "finished" shard (wrong size) is redone; intact ones are kept as they are.
    (out / "train-00001-of-00004.tfrecord").write_bytes(b"half a record")
    kept = {
        n: (out / n).stat().st_mtime_ns for n in finished if n != "train-00001-of-00004.tfrecord"
    }
    prepare(options)
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == kept
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    prepare(_options([corpus], tmp_path / "clean", vocab))
    assert _files(out) == _files(tmp_path / "clean")


# ---------------------------------------------------------------------------------------------
# Bad input


def test_empty_corpora_are_user_errors(tmp_path, vocab):
    (tmp_path / "blank.txt").write_text("\n\n  \n\r\n")
    with pytest.raises(UserError, match="the corpus is empty"):
        prepare(_options([tmp_path / "blank.txt"], tmp_path / "a", vocab))
    (tmp_path / "control.txt").write_text("\x00\x01\n\n\x02\n")
    with pytest.raises(UserError, match="the corpus is empty"):
        prepare(_options([tmp_path / "control.txt"], tmp_path / "b", vocab))
    assert not (tmp_path / "b" / "metadata.json").exists()


def test_too_few_documents_are_user_errors(tmp_path, vocab):
    corpus = _write_lines(tmp_path / "corpus.txt", _documents(5))
    with pytest.raises(UserError, match="--eval_documents=5 leaves no training documents"):
        prepare(_options([corpus], tmp_path / "a", vocab, eval_documents=5))
    with pytest.raises(UserError, match="4 training documents cannot fill --num_shards=8"):
        prepare(_options([corpus], tmp_path / "b", vocab, eval_documents=1, num_shards=8))


def test_output_from_another_plan_is_refused(tmp_path, vocab):
    corpus = _write_lines(tmp_path / "corpus.txt", _documents(50))
    out = tmp_path / "out"
    prepare(_options([corpus], out, vocab))
    before = _files(out)
    with pytest.raises(UserError, match=r"different plan \(seed: 0 there, 1 now\)"):
        prepare(_options([corpus], out, vocab, seed=1))
    with pytest.raises(UserError, match=r"num_shards: 4 there, 2 now"):
        prepare(_options([corpus], out, vocab, num_shards=2))
    with open(corpus, "a") as f:
        f.write("\nOne more document.\n")
    with pytest.raises(UserError, match=r"input.sources: 1 entries there, 1 now; #0: \["):
        prepare(_options([corpus], out, vocab))
    other = tmp_path / "other.txt"
    other.write_text(pathlib.Path(vocab).read_text() + "extra\n")
    with pytest.raises(
        UserError, match=r"made with vocab fingerprint .*vocab_size \d+.*--vocab has"
    ):
        prepare(_options([corpus], out, str(other)))
    assert _files(out) == before


def test_unfinished_output_from_another_plan_and_stray_shards_are_refused(
    tmp_path, vocab, monkeypatch
):
    corpus = _write_lines(tmp_path / "corpus.txt", _documents(50))
    monkeypatch.setattr(
        part_tokenizer.PartTokenizer,
        "__call__",
        lambda self, part: (_ for _ in ()).throw(KeyboardInterrupt),
    )
    with pytest.raises(KeyboardInterrupt):
        prepare(_options([corpus], tmp_path / "out", vocab))
    monkeypatch.undo()
    with pytest.raises(UserError, match=r"unfinished run with a different plan \(seed: 0 there"):
        prepare(_options([corpus], tmp_path / "out", vocab, seed=7))
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "train-00000-of-00001.tfrecord").write_bytes(b"")
    with pytest.raises(UserError, match="holds 1 shard files but no metadata.json"):
        prepare(_options([corpus], tmp_path / "stray", vocab))


def test_cli_summary_and_one_line_errors(tmp_path, vocab, capsys):
    corpus = _write_lines(tmp_path / "corpus.txt", _documents(40))
    args = ["prepare", f"--input={corpus}", f"--vocab={vocab}", "--num_shards=2", "--workers=1"]
    assert cli.main([*args, f"--output={tmp_path / 'out'}", "--eval_documents=4"]) == 0
    printed = capsys.readouterr().out
    assert "40 documents (36 train, 4 eval)" in printed and "in 2 shards" in printed
    assert "MB/s" in printed
    assert cli.main([*args, f"--output={tmp_path / 'out'}", "--seed=3"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("bert-jax prepare: error: ")
    missing = f"--input={tmp_path}/missing*.txt"
    assert cli.main(["prepare", missing, f"--vocab={vocab}", f"--output={tmp_path}/x"]) == 2
    assert "matches no files" in capsys.readouterr().err
    assert cli.main(["prepare", f"--input={corpus}", f"--output={tmp_path}/y"]) == 2  # no vocab
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--vocab" in error[0]
    assert os.listdir(tmp_path / "out")  # untouched by the refused runs


def test_worker_errors_reach_the_caller(tmp_path, vocab):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "fine"}\n' * 200 + "{broken\n")
    options = _options([path], tmp_path / "out", vocab, "jsonl", workers=2, part_bytes=500)
    with pytest.raises(UserError, match=r"docs.jsonl:201: not valid JSON"):
        prepare(options)
    assert not (tmp_path / "out" / "metadata.json").exists()
