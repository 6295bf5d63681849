"""`bert-jax bench tokenize`: bert-jax beside the `tokenizers` library's own fastest batch path
and BertTokenizerFast, on the same vocab and lines."""

import json

import pytest

from bert_jax import paths
from bert_jax.bench import tokenize as bench_tokenize
from bert_jax.text.load import load_tokenizer

pytest_plugins = ["tests.gcs"]

LINES = ["I love BERT model.", "Café au lait, s'il vous plaît!", "Don't panic: 42 whales."]


def test_peers_encode_the_same_vocab_as_bert_jax(uncased_vocab):
    ours = load_tokenizer(uncased_vocab).encode_batch(LINES)
    peers = bench_tokenize.peer_encoders(str(uncased_vocab), lowercase=True)
    assert "tokenizers encode_batch_fast" in peers
    for name, encode in peers.items():
        assert encode(LINES) == ours, name


def test_bench_reports_each_peer_with_identical_ids(tmp_path, uncased_vocab, capsys):
    pytest.importorskip("transformers", reason="the benchmark compares with BertTokenizerFast")
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"I love BERT model.\n\nCaf\xe9 au lait, s'il vous pla\xeet!\n" * 50)
    args = ["--corpus", str(corpus), "--vocab", str(uncased_vocab), "--repeat", "1", "--json"]
    assert bench_tokenize.main(args) == 0
    out = capsys.readouterr().out
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["lines"] == 100 and figures["mb_per_s"] > 0
    assert set(figures["peers"]) == {"tokenizers encode_batch_fast", "BertTokenizerFast"}
    for peer in figures["peers"].values():
        assert peer["lines_with_different_ids"] == 0
        assert peer["mb_per_s"] > 0 and peer["speedup"] > 0
    assert "tokenizers encode_batch_fast" in out and "BertTokenizerFast" in out


def test_corpus_on_gcs_reads_through_the_path_abstraction(gcs_bucket):
    paths.path(f"{gcs_bucket}/corpus/b.txt").write_bytes(b"second\n\n")
    paths.path(f"{gcs_bucket}/corpus/a.txt").write_bytes(b"Caf\xe9 first\n")
    paths.path(f"{gcs_bucket}/corpus/skip.json").write_text("{}")
    lines = bench_tokenize.read_corpus_lines(f"{gcs_bucket}/corpus")
    assert lines == ["Caf\ufffd first", "second"]
