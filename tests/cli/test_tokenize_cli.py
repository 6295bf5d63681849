"""`bert-jax tokenize` as a user runs it (a subprocess), and `bert-jax bench tokenize`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sentencepiece as spm

from bert_jax.bench import tokenize as bench_tokenize
from bert_jax.data.tokenization import train_sentencepiece
from tests.conftest import REPO
from tests.data.tokenizer_references import slow_reference, write_slice


def run_cli(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bert_jax", "tokenize", *args],
        input=stdin.encode("utf-8"),
        capture_output=True,
        cwd=REPO,
        timeout=120,
    )


def ids(line: str) -> list[int]:
    return [int(x) for x in line.split()]


def test_special_single_and_pair_lines(uncased_vocab):
    reference = slow_reference(uncased_vocab, lowercase=True)
    pair_a, pair_b = "Hello, world!", "How are you?"
    result = run_cli(
        f"--vocab={uncased_vocab}",
        "--special",
        stdin=f"I love BERT model\n{pair_a}\t{pair_b}\n\nCafé\r\n",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().split("\n")
    assert lines[-1] == "" and len(lines) == 5
    assert ids(lines[0]) == [101, 1045, 2293, 14324, 2944, 102]
    assert ids(lines[1]) == reference(pair_a, pair_b)["input_ids"]
    assert ids(lines[2]) == [101, 102]
    assert ids(lines[3]) == reference("Café")["input_ids"]


def test_without_special_a_pair_is_both_texts_in_a_row(uncased_vocab):
    reference = slow_reference(uncased_vocab, lowercase=True)
    result = run_cli("--vocab", str(uncased_vocab.parent), stdin="Hello, world!\tHow are you?\n")
    assert result.returncode == 0, result.stderr
    expected = reference("Hello, world!", add_special_tokens=False)["input_ids"]
    expected += reference("How are you?", add_special_tokens=False)["input_ids"]
    assert ids(result.stdout.decode()) == expected


def test_cased(cased_vocab):
    reference = slow_reference(cased_vocab, lowercase=False)
    result = run_cli(f"--vocab={cased_vocab}", "--cased", stdin="Hello Café\n")
    assert result.returncode == 0, result.stderr
    assert (
        ids(result.stdout.decode())
        == reference("Hello Café", add_special_tokens=False)["input_ids"]
    )


@pytest.mark.parametrize("vocab", ["/nonexistent/vocab.txt", "bert_jax/main.py"])
def test_bad_vocab_exits_2_with_one_line(vocab):
    result = run_cli(f"--vocab={vocab}", stdin="hello\n")
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1 and vocab in stderr and "Traceback" not in stderr


def test_too_many_tabs_exits_2(uncased_vocab):
    result = run_cli(f"--vocab={uncased_vocab}", stdin="ok\na\tb\tc\n")
    assert result.returncode == 2
    assert "line 2 has 3 tab-separated fields" in result.stderr.decode()


def test_sentencepiece_model_path(tmp_path):
    model = train_sentencepiece([write_slice(tmp_path, 1500)], str(tmp_path / "sp"), 1000)
    raw = spm.SentencePieceProcessor(model_file=model)
    result = run_cli(f"--vocab={model}", "--special", stdin="The whale.\tCall me Ishmael.\n")
    assert result.returncode == 0, result.stderr
    expected = [2, *raw.encode("The whale."), 3, *raw.encode("Call me Ishmael."), 3]
    assert ids(result.stdout.decode()) == expected


def test_bench_reports_throughput_and_identical_ids(tmp_path, uncased_vocab, capsys):
    pytest.importorskip("transformers", reason="the benchmark compares with BertTokenizerFast")
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"I love BERT model.\n\nCaf\xe9 au lait, s'il vous pla\xeet!\n" * 50)
    args = ["--corpus", str(corpus), "--vocab", str(uncased_vocab), "--repeat", "1", "--json"]
    assert bench_tokenize.main(args) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["lines"] == 100
    assert figures["lines_with_different_ids"] == 0
    assert figures["mb_per_s"] > 0 and figures["hf_mb_per_s"] > 0
