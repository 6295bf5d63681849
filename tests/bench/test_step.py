"""`bert-jax bench step` runs the real train step on a toy size, both sides (masked gather and
all positions), compares with a peer, reports a JSON line, and loads no TensorFlow."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from bert_jax.bench import step
from bert_jax.data import synthetic as synthetic_data
from bert_jax.model.config import preset
from bert_jax.model.heads import BertForPreTraining
from bert_jax.tasks import pretraining_loss as losses

REPO = pathlib.Path(__file__).resolve().parents[2]

# Prints a peer line as peer_step.py does, 1.5 s/step, after checking the arguments it gets.
STAND_IN_PEER = """\
import sys
assert sys.argv[1:] == ["2", "128", "2", "512", "8", "32"], sys.argv
print("hf-torch BertForPreTraining: 1.500 s/step  (1.0 model GFLOP/s)  min 1.4 max 1.6")
"""


def test_all_positions_batch_gives_the_masked_loss_with_the_head_everywhere():
    config = preset("tiny", vocab_size=64)
    masked = synthetic_data.global_batch(0, 0, 4, 16, 3, 64)
    everywhere = step.all_positions_batch(masked)
    assert everywhere["mlm_positions"].shape == (4, 16)
    assert everywhere["mlm_weights"].sum() == masked["mlm_weights"].sum()

    model = BertForPreTraining(config)
    variables = model.init(jax.random.PRNGKey(0), masked["input_ids"])

    def sums(batch):
        inputs = [batch[k] for k in ("input_ids", "segment_ids", "input_mask", "mlm_positions")]
        return losses.pretraining_sums(model.apply(variables, *inputs), batch)

    a, b = sums(masked), sums(everywhere)
    assert sums(everywhere)["mlm_weight"] == a["mlm_weight"]
    for key in losses.SUM_KEYS:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-5, err_msg=key)


def test_bench_step_reports_each_side_and_the_ratios_without_tensorflow(tmp_path):
    (tmp_path / "peer_step.py").write_text(STAND_IN_PEER)
    code = (
        "import sys\n"
        "from bert_jax.bench import step\n"
        "step.main(sys.argv[1:])\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    # vocab and predictions as the step peer has them built in, so the comparison runs.
    args = ["--size=tiny", "--batch=8", "--seq=32", "--predictions=20", "--vocab=30522",
            "--steps=1", "--warmup=0", "--matmul=256", "--json",
            f"--peer_python={sys.executable}", f"--peers_dir={tmp_path}"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["devices"] == 2 and figures["batch"] == 8
    assert figures["step_s_median"] > 0 and figures["model_gflops_per_s_per_device"] > 0
    assert figures["model_over_matmul"] > 0 and figures["mfu"] is None  # CPU: no known peak

    count = step.side_flops(preset("tiny", vocab_size=30522), 8, 32, 20)
    everywhere = figures["all_positions"]
    assert figures["model_gflop_per_step"] == pytest.approx(count["masked"] / 1e9)
    assert everywhere["model_gflop_per_step"] == pytest.approx(count["all_positions"] / 1e9)
    assert figures["masked_gather_speedup"] == pytest.approx(
        everywhere["step_s_median"] / figures["step_s_median"]
    )
    peer = figures["peers"]["hf-torch"]
    assert peer["model_gflop_per_step"] == pytest.approx(count["all_positions"] / 1e9)
    assert peer["speedup"] == pytest.approx(1.5 / figures["step_s_median"])
    assert peer["speedup_vs_all_positions"] == pytest.approx(1.5 / everywhere["step_s_median"])
    assert "hf-torch / bert-jax masked" in done.stdout


def test_masked_only_skips_the_all_positions_side():
    args = step._args(["--masked_only"])
    assert args.masked_only and args.peers_dir is None
