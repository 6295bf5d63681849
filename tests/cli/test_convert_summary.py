"""`bert-jax convert` and `bert-jax embed` with progress bars asked for (BERT_JAX_PROGRESS=1,
stderr being no terminal here): reading a Hugging Face directory's tensors, reading a Google TF
checkpoint's variables, writing model.safetensors, tokenizing and embedding lines each draw a
bar on stderr that reaches its total; stdout ends with the summary table of what was read and
written."""

import io
import re
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest

from bert_jax import main as cli
from bert_jax import progress
from bert_jax.interop import hf
from bert_jax.model.heads import BertForPreTraining
from tests.interop.reference import TINY, tiny_config

VARIABLES = 62  # weights of the TINY BertForPreTraining with every head (3 layers)


@pytest.fixture(scope="module")
def params():
    config = tiny_config()
    init = jax.jit(BertForPreTraining(config).init)
    tree = init(jax.random.PRNGKey(0), np.zeros((1, 4), np.int32))["params"]
    return config, jax.tree.map(np.asarray, nn.unbox(tree))


@pytest.fixture
def vocab(tmp_path):
    path = tmp_path / "vocab.txt"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    path.write_text("\n".join(tokens + [f"t{i}" for i in range(TINY["vocab_size"] - 5)]) + "\n")
    return path


def rows(out: str) -> dict[str, str]:
    table = out[out.rindex("\nconvert: summary\n") + 1 :].rstrip("\n").splitlines()
    assert table[1] == table[-1] == "=" * len(table[1]), "the table is the last thing printed"
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in table[2:-1])


def finished_bar(err: str, desc: str) -> str:
    """The last drawing of the bar `desc` (bars redraw with carriage returns)."""
    drawn = [part for part in re.split(r"[\r\n]", err) if part.startswith(f"{desc}: ")]
    assert drawn, f"no bar {desc!r} in: {err!r}"
    assert drawn[-1].startswith(f"{desc}: 100%"), drawn[-1]
    return drawn[-1]


def test_hf_to_hf_shows_reading_and_writing(params, vocab, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(progress.ENV, "1")
    config, tree = params
    source = tmp_path / "source"
    hf.save_hf(tree, config, source, vocab=vocab)
    finished_bar(capsys.readouterr().err, "write model.safetensors")

    target = tmp_path / "target"
    assert cli.main(["convert", f"--from={source}", f"--to={target}"]) == 0
    out, err = capsys.readouterr()
    assert f"{VARIABLES}/{VARIABLES}" in finished_bar(err, "read model.safetensors")
    finished_bar(err, "write model.safetensors")
    shown = rows(out)
    assert shown["read"] == f"{source / 'model.safetensors'} (hf)"
    assert shown["params"] == f"{VARIABLES} loaded, 0 missing, 0 unused"
    assert shown["written"] == f"{target} (Hugging Face BertForPreTraining)"
    assert shown["files"].startswith("config.json, model.safetensors, vocab.txt")
    assert shown["vocabulary"] == str(source / "vocab.txt")
    assert re.fullmatch(r"[\d.]+ s", shown["time"])
    assert "loaded 62 params, missing 0, unused 0" in out  # the import report, above the table


def test_google_tf_checkpoint_shows_its_variables(params, tmp_path, capsys, monkeypatch):
    pytest.importorskip("tensorflow")
    from tests.interop.google_checkpoint import write_google_checkpoint

    config, tree = params
    state, _ = hf.to_state_dict(tree, config)
    source = write_google_checkpoint(tmp_path / "google", state)
    monkeypatch.setenv(progress.ENV, "1")
    target = tmp_path / "target"
    assert cli.main(["convert", f"--from={source}", f"--to={target}", "--format=bert-jax"]) == 0
    out, err = capsys.readouterr()
    assert f"{VARIABLES}/{VARIABLES}" in finished_bar(err, "read bert_model.ckpt")
    shown = rows(out)
    assert shown["read"] == f"{source / 'bert_model.ckpt'} (tf)"
    assert shown["written"] == f"{target} (bert-jax params checkpoint {target}/checkpoints/0)"
    assert shown["vocabulary"] == "none written"


def test_no_bars_when_turned_off(params, vocab, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(progress.ENV, "0")
    config, tree = params
    hf.save_hf(tree, config, tmp_path / "source", vocab=vocab)
    assert cli.main(["convert", f"--from={tmp_path / 'source'}", f"--to={tmp_path / 't'}"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "convert: summary" in out


def test_embed_counts_lines_and_ends_with_its_table(params, vocab, tmp_path, capsys, monkeypatch):
    config, tree = params
    hf.save_hf(tree, config, tmp_path / "model", vocab=vocab)
    lines = ["t1 t2 t3", "t4\tt5 t6", "t7"]
    data = "".join(line + "\n" for line in lines).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    monkeypatch.setenv(progress.ENV, "1")
    output = tmp_path / "vectors.npy"
    args = ["embed", f"--init_from={tmp_path / 'model'}", f"--output={output}", "--max_len=16"]
    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    assert "3/3" in finished_bar(err, "tokenize") and "3/3" in finished_bar(err, "embed")
    table = out[out.index("embed: summary") :].splitlines()
    shown = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in table[2:-1])
    assert shown["lines"] == "3"
    assert shown["written"] == f"{output} (cls embeddings, shape [3, {TINY['hidden_size']}])"
    assert np.load(output).shape == (3, TINY["hidden_size"])
