"""`bert-jax bench step` runs the real train step on a toy size, reports a JSON line, and
loads no TensorFlow."""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_bench_step_reports_json_without_tensorflow():
    code = (
        "import sys\n"
        "from bert_jax.bench import step\n"
        "step.main(sys.argv[1:])\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    args = ["--size=tiny", "--batch=8", "--seq=32", "--predictions=4", "--vocab=128",
            "--steps=2", "--warmup=0", "--matmul=256", "--json"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["devices"] == 2 and figures["batch"] == 8
    assert figures["step_s_median"] > 0 and figures["model_gflops_per_s_per_device"] > 0
    assert figures["model_over_matmul"] > 0 and figures["mfu"] is None  # CPU: no known peak
