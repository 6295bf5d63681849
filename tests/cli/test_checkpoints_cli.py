"""`bert-jax checkpoints`: lists steps, bytes on disk and metrics (without importing JAX),
exports a step that `transformers` loads with our weights, and refuses bad input with exit 2."""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from bert_jax import main as cli
from bert_jax.checkpoint import manager as checkpointing
from bert_jax.text.load import load_tokenizer
from bert_jax.text.tokenizer import file_fingerprint
from tests.checkpoint import fixtures as fx

REPO = pathlib.Path(__file__).resolve().parents[2]


# A cased vocabulary of TINY's 64 entries: "Paris" and "paris" are different tokens.
WORDS = ["Paris", "paris", "Rome", "rome", "Is", "is", "the", "The", "capital", ",", ".", "##s"]
CASED_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
CASED_VOCAB += [f"tok{i}" for i in range(fx.TINY.vocab_size - len(CASED_VOCAB))]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Steps 2 (with eval metrics) and 4, plus the leftovers of an interrupted save of 6; the
    model was trained cased with `vocab.txt` beside the workdir (its fingerprint says so)."""
    root = tmp_path_factory.mktemp("run")
    vocab = root.parent / f"{root.name}-vocab.txt"
    vocab.write_text("".join(f"{token}\n" for token in CASED_VOCAB))
    fingerprint = file_fingerprint(vocab.read_bytes(), lowercase=False)
    state = fx.random_state(fx.pretraining(), seed=1)
    with checkpointing.Checkpointer(
        root, fx.options(), fx.metadata(fingerprint=fingerprint)
    ) as ckpt:
        ckpt.save(2, state, {"batches": 2}, metrics={"loss": 3.25, "mlm_accuracy": 0.5})
        ckpt.save(4, state, {"batches": 4})
    partial = root / "checkpoints" / "6.orbax-checkpoint-tmp"
    partial.mkdir()
    (partial / "half-written").write_bytes(b"x" * 100)
    return root, state, vocab


def du(directory: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def test_json_listing_has_steps_sizes_metrics_and_the_interrupted_save(workdir, capsys):
    root, _, _ = workdir
    assert cli.main(["checkpoints", str(root), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = listing["checkpoints"]
    assert [r["step"] for r in rows] == [2, 4]
    for row in rows:
        assert row["bytes"] == du(root / "checkpoints" / str(row["step"])) > 10_000
        assert row["data_state"] == {"batches": row["step"]}
    assert rows[0]["metrics"] == {"loss": 3.25, "mlm_accuracy": 0.5} and rows[1]["metrics"] == {}
    assert listing["interrupted_saves"] == ["6.orbax-checkpoint-tmp"]
    assert listing["model"]["hidden_size"] == fx.TINY.hidden_size


def test_table_listing(workdir, capsys):
    root, _, _ = workdir
    assert cli.main(["checkpoints", str(root / "checkpoints")]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert [fields[0] for fields in lines if "loss=3.25" in fields] == ["2"]
    assert "mlm_accuracy=0.5" in out and "interrupted save 6.orbax-checkpoint-tmp" in out
    assert any(fields[:1] == ["4"] and fields[-1] == "-" for fields in lines)


def test_listing_needs_no_jax(workdir):
    root, _, _ = workdir
    code = (
        "import sys; from bert_jax.cli import checkpoints; checkpoints.main([sys.argv[1]]); "
        "print('heavy modules:', sorted(m for m in ('jax', 'orbax', 'tensorflow') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "heavy modules: []" in out


def test_export_loads_in_transformers_with_our_weights(workdir, tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    root, state, vocab = workdir
    out_dir = tmp_path / "hf"
    argv = ["checkpoints", str(root), "--export=4", f"--to={out_dir}", f"--vocab={vocab}"]
    assert cli.main(argv) == 0
    assert "step 4 ->" in capsys.readouterr().out
    assert (out_dir / "vocab.txt").read_text() == vocab.read_text()
    model = transformers.BertForPreTraining.from_pretrained(out_dir)
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    np.testing.assert_array_equal(
        weights["bert.embeddings.word_embeddings.weight"],
        state.params["bert"]["embeddings"]["word_embeddings"]["embedding"],
    )
    np.testing.assert_array_equal(
        weights["bert.encoder.layer.0.intermediate.dense.weight"],
        state.params["bert"]["encoder"]["layer_0"]["intermediate"]["kernel"].T,
    )
    # The tokenizer is cased, as trained: transformers gives our ids, "Paris" is not "paris".
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out_dir)
    ours = load_tokenizer(vocab, lowercase=False)
    text = "Paris is the capital, Rome Is the capital."
    assert hf_tokenizer(text)["input_ids"] == ours.encode_example(text).input_ids
    assert hf_tokenizer("Paris paris")["input_ids"][1:3] == [5, 6]
    # The same directory again: refused, the first export untouched.
    before = fx.snapshot(out_dir)
    assert cli.main(argv) == 2
    assert fx.snapshot(out_dir) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}"], "workdir does not exist"),
        (
            ["{root}", "--export=3", "--to={tmp}/x"],
            "no checkpoint at step 3 in .* \\(steps: 2, 4\\)",
        ),
        (["{root}", "--to={tmp}/x"], "--to, --vocab, --task and --labels go with --export"),
        (
            ["{root}", "--export=2", "--to={tmp}/x", "--vocab={tmp}/other.txt"],
            "other.txt is not the vocabulary this checkpoint was trained with",
        ),
        (["{root}", "--export=2"], "--export needs --to"),
        (["{tmp}"], "no checkpoints in"),
    ],
)
def test_bad_input_exits_2_with_one_line(workdir, tmp_path, capsys, args, message):
    root, _, _ = workdir
    values = {"root": root, "tmp": tmp_path, "missing": tmp_path / "missing"}
    (tmp_path / "other.txt").write_text("".join(f"x{i}\n" for i in range(fx.TINY.vocab_size)))
    assert cli.main(["checkpoints"] + [a.format(**values) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
