"""`python -m bert_jax.bench.squad_matched`: one SQuAD fine-tuning run made by transformers and by
bert-jax's trainer step in lockstep, every random draw shared. On a small random model the two
losses agree at every step to float32 rounding, and the two evaluations of the two trained
models agree."""

import json

import pytest

from bert_jax.bench import squad_matched
from tests.bench.test_squad_cross_eval import qa_model_dir  # noqa: F401 (a fixture)
from tests.conftest import shared_path

pytestmark = pytest.mark.slow  # a few steps on both sides and two evaluations: about 30 s

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def test_both_sides_train_alike(qa_model_dir, tmp_path, capsys):  # noqa: F811
    dev = shared_path("squad", "dev-v1.1.json")
    argv = [
        str(qa_model_dir), str(dev), "0", "--train_articles", "0:1", "--eval_articles", "-1:",
        "--epochs", "0.1", "--batch", "16", "--max_len", "384", "--lr", "1e-3",
        "--out", str(tmp_path),
    ]  # fmt: skip
    assert squad_matched.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    losses = json.loads((tmp_path / "losses.json").read_text())
    assert result["steps"] == len(losses["transformers"]) == len(losses["bert_jax"]) >= 3
    # The run moves the model (1e-3 over a few steps), and both sides follow the same path.
    assert abs(losses["transformers"][-1] - losses["transformers"][0]) > 1e-2
    assert result["max_loss_gap"] < 1e-4
    theirs, ours = result["transformers"], result["bert_jax"]
    assert abs(theirs["f1"] - ours["f1"]) < 1.0
    assert abs(theirs["exact_match"] - ours["exact_match"]) < 1.0
