"""The embedded demo corpus: Python's own documentation, deterministic, real English, and a
WordPiece vocab that covers it."""

import collections
import json
import pathlib
import re

from transformers import BertTokenizerFast

from bert_jax.data import demo_corpus, stdlib_docs

pytest_plugins = ["tests.gcs"]


def read_documents(corpus: str) -> list[list[str]]:
    """corpus.txt back as documents (BERT's layout: blank lines between documents)."""
    text = pathlib.Path(corpus).read_text()
    return [block.split("\n") for block in text.strip("\n").split("\n\n")]


def test_the_corpus_is_real_english_from_both_sources():
    documents = demo_corpus.demo_documents()
    sources = collections.Counter(doc.source for doc in documents)
    assert sources[stdlib_docs.REFERENCE] > 50 and sources[stdlib_docs.DOCSTRING] > 300
    text = "\n".join(s for doc in documents for s in doc.sentences)
    assert len(text.encode()) > 1_000_000  # about 1.7 MB for Python 3.11
    words = re.findall(r"[a-z]+", text.lower())
    frequent = {word for word, _ in collections.Counter(words).most_common(12)}
    assert {"the", "of", "to", "a", "is", "and"} <= frequent
    # Sentences, not code: most start with a capital and end with punctuation.
    sentences = [s for doc in documents for s in doc.sentences]
    looks_like_one = sum(1 for s in sentences if s[0].isupper() and s[-1] in ".:?!)\"'")
    assert looks_like_one > 0.8 * len(sentences)


def test_documents_are_deterministic_and_ordered_by_seed():
    a = demo_corpus.documents(30, seed=1)
    assert a == demo_corpus.documents(30, seed=1)
    assert a != demo_corpus.documents(30, seed=2)
    assert sorted(map(tuple, demo_corpus.documents(seed=1))) == sorted(
        map(tuple, demo_corpus.documents(seed=2))
    )
    assert all(doc and all(sentence.strip() == sentence for sentence in doc) for doc in a)


def test_write_is_deterministic_and_reused(tmp_path):
    first = demo_corpus.write(tmp_path / "a", num_documents=60)
    second = demo_corpus.write(tmp_path / "b", num_documents=60)
    for key in ("corpus", "vocab"):
        assert pathlib.Path(first[key]).read_bytes() == pathlib.Path(second[key]).read_bytes()
    assert read_documents(first["corpus"]) == demo_corpus.documents(60)
    about = json.loads((tmp_path / "a" / "about.json").read_text())
    assert about["documents"] == 60 and about["vocab_size"] == demo_corpus.VOCAB_SIZE
    stamp = pathlib.Path(first["corpus"]).stat().st_mtime_ns
    lines = []
    assert demo_corpus.write(tmp_path / "a", num_documents=60, log=lines.append) == first
    assert pathlib.Path(first["corpus"]).stat().st_mtime_ns == stamp
    assert lines == [f"demo corpus: reusing {first['corpus']} and vocab.txt"]
    demo_corpus.write(tmp_path / "a", num_documents=61)  # another request: written again
    assert len(read_documents(first["corpus"])) == 61


def test_vocab_covers_the_whole_corpus_with_whole_common_words(tmp_path):
    files = demo_corpus.write(tmp_path)
    vocab = pathlib.Path(files["vocab"]).read_text().splitlines()
    assert len(vocab) == demo_corpus.VOCAB_SIZE == len(set(vocab))
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert all(token == token.lower() for token in vocab[5:])  # uncased
    tokenizer = BertTokenizerFast(vocab_file=files["vocab"], do_lower_case=True)
    lines = [line for doc in read_documents(files["corpus"]) for line in doc]
    ids = [i for row in tokenizer(lines, add_special_tokens=False)["input_ids"] for i in row]
    assert len(ids) > 300_000
    assert ids.count(tokenizer.unk_token_id) < 1e-4 * len(ids)
    for word in ("the", "function", "module", "return", "argument", "statement", "exception"):
        assert tokenizer.tokenize(word) == [word]


def test_prepared_shards_are_complete_and_reused(tmp_path, monkeypatch):
    from bert_jax.data import shard_reader

    lines = []
    shards = demo_corpus.prepared_shards(tmp_path, num_documents=40, log=lines.append)
    assert [line.split(":")[0] for line in lines] == ["demo corpus", "demo vocab", "demo shards"]
    assert "40 documents" in lines[0] and "36 train and 4 held-out documents" in lines[2]
    metadata = shard_reader.read_metadata(shards)
    assert metadata["splits"]["eval"]["documents"] == 4  # EVAL_SHARE of 40
    assert metadata["splits"]["train"]["documents"] == 36
    stamp = pathlib.Path(shards, "metadata.json").stat().st_mtime_ns

    def read_again():
        raise AssertionError("a re-run read the documentation again")

    monkeypatch.setattr(demo_corpus, "_all_documents", read_again)
    assert demo_corpus.prepared_shards(tmp_path, num_documents=40) == shards
    assert pathlib.Path(shards, "metadata.json").stat().st_mtime_ns == stamp


def test_prepared_shards_in_a_bucket(gcs_bucket, tmp_path, monkeypatch):
    """A gs:// workdir (pretrain's demo data lives under it) stays in the bucket."""
    from bert_jax import paths
    from bert_jax.data import shard_reader

    monkeypatch.chdir(tmp_path)
    shards = demo_corpus.prepared_shards(f"{gcs_bucket}/run/demo_data", num_documents=40)
    assert shards == f"{gcs_bucket}/run/demo_data/shards"
    assert shard_reader.read_metadata(shards)["splits"]["train"]["documents"] == 36
    assert paths.path(f"{gcs_bucket}/run/demo_data/text/vocab.txt").exists()
    assert not list(tmp_path.iterdir())


def test_the_finetune_command_names_the_run_and_the_embedded_task():
    command = demo_corpus.finetune_command("workdir/quickstart/")
    assert command == (
        "bert-jax finetune --config=configs/glue.py:docsource "
        "--workdir=workdir/quickstart-finetune --config.init_from=workdir/quickstart"
    )
    assert demo_corpus.next_step("workdir/quickstart").endswith("\n  " + command)
