"""The embedded default corpus: deterministic, and its vocab covers every word it produces."""

import pathlib

from transformers import BertTokenizerFast

from bert_jax.data import demo_corpus

pytest_plugins = ["tests.gcs"]


def test_vocab_covers_the_corpus_without_unknown_tokens(tmp_path):
    paths = demo_corpus.write(tmp_path, num_documents=200, seed=3)
    tokenizer = BertTokenizerFast(vocab_file=paths["vocab"], do_lower_case=True)
    lines = [line for line in pathlib.Path(paths["corpus"]).read_text().splitlines() if line]
    ids = tokenizer(lines, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in {i for row in ids for i in row}
    assert sum(len(row) for row in ids) > 200 * 4 * 8


def test_documents_are_deterministic_and_multi_sentence():
    a = demo_corpus.documents(50, seed=1)
    assert a == demo_corpus.documents(50, seed=1)
    assert a != demo_corpus.documents(50, seed=2)
    assert all(4 <= len(doc) <= 12 for doc in a)


def test_prepared_shards_are_complete_and_reused(tmp_path):
    from bert_jax.data import shard_reader

    shards = demo_corpus.prepared_shards(tmp_path, num_documents=100)
    metadata = shard_reader.read_metadata(shards)
    assert metadata["splits"]["eval"]["documents"] == 5
    assert metadata["splits"]["train"]["documents"] == 95
    stamp = pathlib.Path(shards, "metadata.json").stat().st_mtime_ns
    assert demo_corpus.prepared_shards(tmp_path, num_documents=100) == shards
    assert pathlib.Path(shards, "metadata.json").stat().st_mtime_ns == stamp


def test_prepared_shards_in_a_bucket(gcs_bucket, tmp_path, monkeypatch):
    """A gs:// workdir (pretrain's demo data lives under it) stays in the bucket."""
    from bert_jax import paths
    from bert_jax.data import shard_reader

    monkeypatch.chdir(tmp_path)
    shards = demo_corpus.prepared_shards(f"{gcs_bucket}/run/demo_data", num_documents=40)
    assert shards == f"{gcs_bucket}/run/demo_data/shards"
    assert shard_reader.read_metadata(shards)["splits"]["train"]["documents"] == 38
    assert paths.path(f"{gcs_bucket}/run/demo_data/text/vocab.txt").exists()
    assert not list(tmp_path.iterdir())
