"""`bert-jax tokenize` as a user runs it (a subprocess). `bert-jax bench tokenize`: tests/bench."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sentencepiece as spm

from bert_jax.text.load import train_sentencepiece
from tests.conftest import REPO
from tests.text.references import slow_reference, write_slice


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


def test_special_token_strings_in_the_input_are_special_tokens(uncased_vocab):
    """Hugging Face's behaviour for a tokenizer's own input (`prepare` reads corpus text
    otherwise: tests/data/test_prepare.py)."""
    reference = slow_reference(uncased_vocab, lowercase=True)
    text = "a [SEP] b [MASK] c [CLS]d[PAD] [UNK] é [SEP]"
    result = run_cli(f"--vocab={uncased_vocab}", stdin=text + "\n")
    assert result.returncode == 0, result.stderr
    got = ids(result.stdout.decode())
    assert got == reference(text, add_special_tokens=False)["input_ids"]
    assert {0, 100, 101, 102, 103} <= set(got)


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
