"""The whole pod path on gs://, against a local GCS emulator: `prepare` reads a corpus and a
vocab from a bucket and writes shards there; `pretrain` trains from them into a gs:// workdir,
is stopped by SIGTERM, resumes from its own checkpoint; `checkpoints` lists and exports to
gs://; `embed` reads the export and the workdir back (`init_from`'s loader for each).

Every command is the real CLI in its own process, as on a TPU VM; the emulator endpoint reaches
them through the environment (`tests/gcs.py`). Nothing may appear on the local disk: a gs://
path that became a local directory (`gs:`) is the failure this test exists for."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from bert_jax import paths
from bert_jax.data import demo_corpus
from tests.gcs import reset_gcs_clients

pytest_plugins = ["tests.gcs"]

REPO = pathlib.Path(__file__).resolve().parents[1]
RUN = [
    f"--config={REPO}/configs/pretrain.py:tiny,runlocal",
    "--config.model.dtype=float32",
    "--config.data.max_seq_length=32",
    "--config.data.max_predictions_per_seq=5",
    "--config.train.batch_size=8",
    "--config.train.log_every_steps=1",
    "--config.train.eval_every_steps=1000",
    "--config.train.eval_batches=1",
    "--config.checkpoint.save_every_steps=4",
    "--config.checkpoint.save_every_minutes=0",
]


def _env(cwd: pathlib.Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    return env


def _bert_jax(cwd, *args, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "bert_jax", *args],
        cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, (args[0], result.stderr[-3000:])
    return result


def _upload(local: pathlib.Path, remote: str) -> None:
    paths.path(remote).write_bytes(local.read_bytes())


@pytest.mark.slow
def test_prepare_pretrain_sigterm_resume_export_embed_on_gcs(gcs_bucket, tmp_path):
    cwd = tmp_path / "cwd"  # every command runs here: nothing may be written into it
    cwd.mkdir()
    text = demo_corpus.write(tmp_path / "text", num_documents=400)
    _upload(pathlib.Path(text["corpus"]), f"{gcs_bucket}/corpus/part-0.txt")
    _upload(pathlib.Path(text["vocab"]), f"{gcs_bucket}/vocab/vocab.txt")
    shards, workdir = f"{gcs_bucket}/shards", f"{gcs_bucket}/runs/tiny"

    _bert_jax(cwd, "prepare", f"--input={gcs_bucket}/corpus/*.txt", "--format=lines",
              f"--vocab={gcs_bucket}/vocab/vocab.txt", f"--output={shards}", "--num_shards=2",
              "--eval_documents=20", "--workers=1", "--no_progress")  # fmt: skip
    reset_gcs_clients()
    assert paths.path(f"{shards}/metadata.json").exists()
    # The vocab is recorded as its gs:// path and found again at pretrain time.
    assert f"{gcs_bucket}/vocab/vocab.txt" in paths.path(f"{shards}/metadata.json").read_text()

    run = [*RUN, f"--workdir={workdir}", f"--config.data.data_dir={shards}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bert_jax", "pretrain", *run, "--config.train.num_steps=400"],
        cwd=cwd, env=_env(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    out = []
    for line in proc.stdout:
        out.append(line)
        if re.match(r"^train step 2:", line):
            proc.send_signal(signal.SIGTERM)
            break
    out.append(proc.communicate(timeout=300)[0])
    first = "".join(out)
    assert proc.returncode == 0, first[-3000:]
    saved = int(re.search(r"preempted: saved step (\d+)", first)[1])

    second = _bert_jax(cwd, "pretrain", *run, f"--config.train.num_steps={saved + 4}")
    resumed = second.stdout + second.stderr
    assert f"start: resumed from step {saved}" in resumed, resumed[-3000:]
    assert f"train step {saved + 4}:" in resumed

    listing = _bert_jax(cwd, "checkpoints", workdir).stdout
    assert str(saved) in listing and str(saved + 4) in listing
    export = f"{gcs_bucket}/export"
    _bert_jax(cwd, "checkpoints", workdir, f"--export={saved + 4}", f"--to={export}")
    reset_gcs_clients()
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"):
        assert paths.path(f"{export}/{name}").exists(), name

    # The export and the workdir are read back from the bucket, and agree.
    lines = "the cat sat in the morning .\nthe dogs ran at night .\n"
    vectors = {}
    for name, source in (("export", export), ("workdir", workdir)):
        output = tmp_path / f"{name}.npy"
        result = subprocess.run(
            [sys.executable, "-m", "bert_jax", "embed", f"--init_from={source}",
             f"--output={output}", f"--vocab={gcs_bucket}/vocab/vocab.txt", "--pooling=cls"],
            cwd=cwd, env=_env(cwd), input=lines, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        vectors[name] = np.load(output)
    assert vectors["export"].shape == (2, 128)
    np.testing.assert_allclose(vectors["export"], vectors["workdir"], atol=1e-5)

    assert sorted(os.listdir(cwd)) == [], "a gs:// path was written to the local disk"
