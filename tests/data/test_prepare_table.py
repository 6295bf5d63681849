"""`bert-jax prepare` ends with its summary table on stdout: the counts `metadata.json` records
(documents per split, sentences, tokens, shards) and the time taken; a rerun that finds the
dataset complete says so in the table too. Its bars (tokenize, shards) follow BERT_JAX_PROGRESS
like every other bar."""

import json
import pathlib
import re

import pytest

from bert_jax import main as cli
from bert_jax import progress

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = "the cat sat on a mat and dog ran to it was red big".split()  # noqa: SIM905


def rows(out: str) -> dict[str, str]:
    """The rows of the table that ends `out` (after its title line)."""
    table = out[out.rindex("\nprepare: summary\n") + 1 :].rstrip("\n").splitlines()
    assert table[1] == table[-1] == "=" * len(table[1]), "the table is the last thing printed"
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in table[2:-1])


def prepare_args(tmp_path) -> tuple[list[str], pathlib.Path, pathlib.Path]:
    """`bert-jax prepare` arguments for 20 small documents (no --no_progress), the corpus and
    the output directory."""
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join([*SPECIALS, *WORDS, "."]) + "\n")
    documents = [
        [f"the {a} sat on a {b} .", f"it was {c} ."]
        for a, b, c in zip(WORDS * 2, WORDS[3:] + WORDS, WORDS[5:] + WORDS, strict=False)
    ][:20]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(d) for d in documents) + "\n")
    output = tmp_path / "shards"
    args = ["prepare", f"--input={corpus}", f"--vocab={vocab}", f"--output={output}",
            "--num_shards=2", "--eval_documents=3", "--workers=1"]  # fmt: skip
    return args, corpus, output


def test_prepare_ends_with_its_table(tmp_path, capsys):
    args, corpus, output = prepare_args(tmp_path)
    args.append("--no_progress")
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "20 documents (17 train, 3 eval)" in out  # the one-line summary stays, above
    splits = json.loads((output / "metadata.json").read_text())["splits"]
    tokens = sum(s["tokens"] for s in splits.values())
    sentences = sum(s["sentences"] for s in splits.values())
    shown = rows(out)
    assert shown["output"] == str(output)
    assert shown["documents"] == "20"
    assert shown["train split"] == "17 documents in 2 shards"
    assert shown["eval split"] == "3 documents"
    # 2 sentences of 7 and 4 words a document, every word in the vocab: 40 sentences, 220 tokens.
    assert (shown["sentences"], shown["tokens"]) == (f"{sentences}", f"{tokens}") == ("40", "220")
    assert shown["input"] == f"{corpus.stat().st_size / 1000:.1f} KB"
    assert re.fullmatch(r"[\d.]+ s \([\d.]+ MB/s\)", shown["time"])

    assert cli.main(args) == 0  # complete already: nothing done, the same counts
    shown = rows(capsys.readouterr().out)
    assert shown["status"] == "already complete with the same plan: nothing done"
    assert shown["documents"] == "20" and shown["tokens"] == f"{tokens:,}"
    assert "time" not in shown


@pytest.mark.parametrize("env, shown", [("1", True), ("0", False)])
def test_its_bars_follow_the_environment(tmp_path, capsys, monkeypatch, env, shown):
    """The tokenize and shards bars (stderr is no terminal here) as BERT_JAX_PROGRESS says."""
    monkeypatch.setenv(progress.ENV, env)
    args, _, _ = prepare_args(tmp_path)
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert ("tokenize: 100%" in err and "shards: 100%|" in err) is shown, err
