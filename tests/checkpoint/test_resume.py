"""Interrupted training runs, in real subprocesses: SIGTERM at some step k, then kill -9 in the
middle of a save, then a restart must end exactly where an uninterrupted run ends (params and
optimizer state bit-equal on CPU) and log the same loss at every step it trains.

The run is a small loop of its own (this file run as a script: the real model, real AdamW,
dropout, a data position in the checkpoint), so the checkpoint mechanism is proven
independently of the trainer; the `bert-jax pretrain` variant below runs when that CLI exists.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from bert_jax.checkpoint import restore as checkpoint_restore

REPO = pathlib.Path(__file__).resolve().parents[2]
NUM_STEPS = 6
SAVE_EVERY = 2
STALL_ENV = "BERT_JAX_TEST_STALL_SAVE_AT"  # the script hangs in the commit of this step's save


def _loss_lines(text: str) -> dict[int, str]:
    return {int(m[1]): m[2] for m in re.finditer(r"^step (\d+) loss (\S+)$", text, re.M)}


def _env(tmp_path) -> dict:
    """One CPU device; compiled programs cached on disk, so the runs after the first of a test
    skip XLA compilation (the executable, and so the numbers, are the same)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    env.pop(STALL_ENV, None)
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "jax-cache")
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    return env


def _start(workdir, out, stall_at: int | None = None) -> subprocess.Popen:
    env = _env(pathlib.Path(workdir).parent)
    if stall_at is not None:
        env[STALL_ENV] = str(stall_at)
    return subprocess.Popen(
        [sys.executable, __file__, str(workdir), str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until(proc: subprocess.Popen, pattern: str) -> str:
    """stdout lines up to and including the first matching `pattern` (or the process's end)."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if re.search(pattern, line):
            break
    return "".join(seen)


def _finish(proc: subprocess.Popen, so_far: str = "") -> str:
    rest = proc.communicate(timeout=300)[0]
    text = so_far + rest
    assert proc.returncode == 0, text[-4000:]
    return text


def _assert_same_state(file_a, file_b):
    a, b = np.load(file_a), np.load(file_b)
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.slow
def test_sigterm_then_kill9_then_restart_equals_the_uninterrupted_run(tmp_path):
    """The order of events a preemptible run meets; each restart is the same command."""
    # Reference: one run, no interruption.
    reference = _finish(_start(tmp_path / "reference", tmp_path / "reference.npz"))
    reference_losses = _loss_lines(reference)
    assert sorted(reference_losses) == list(range(1, NUM_STEPS + 1))

    # SIGTERM while training: the run saves the step it is at, waits, and exits cleanly.
    workdir = tmp_path / "run"
    proc = _start(workdir, tmp_path / "unused.npz")
    so_far = _read_until(proc, r"^step 2 loss")
    proc.send_signal(signal.SIGTERM)
    first = _finish(proc, so_far)
    k = int(re.search(r"^preempted: saved step (\d+)", first, re.M)[1])
    assert 2 <= k < NUM_STEPS
    assert str(k) in os.listdir(workdir / "checkpoints")

    # Restart, and kill -9 while the next scheduled save is being committed.
    stalled_step = (k // SAVE_EVERY + 1) * SAVE_EVERY
    proc = _start(workdir, tmp_path / "unused.npz", stall_at=stalled_step)
    second = _read_until(proc, r"^stalled in the commit of step")
    assert f"resumed from step {k} of {workdir}" in second, second[-3000:]
    proc.kill()
    proc.communicate(timeout=60)
    entries = os.listdir(workdir / "checkpoints")
    assert str(stalled_step) not in entries, entries  # never committed ...
    assert any(e.startswith(f"{stalled_step}.orbax-checkpoint-tmp") for e in entries), entries

    # ... so the restart resumes from k, ignores and clears the partial save, and finishes.
    third = _finish(_start(workdir, tmp_path / "resumed.npz"))
    assert f"resumed from step {k} of {workdir}" in third, third[-3000:]
    resumed_losses = _loss_lines(third)
    assert sorted(resumed_losses) == list(range(k + 1, NUM_STEPS + 1))
    for step, loss in resumed_losses.items():
        assert loss == reference_losses[step], f"step {step}: {loss} != {reference_losses[step]}"
    for step, loss in _loss_lines(first).items():
        assert loss == reference_losses[step]
    _assert_same_state(tmp_path / "resumed.npz", tmp_path / "reference.npz")
    entries = os.listdir(workdir / "checkpoints")
    assert not [e for e in entries if "tmp" in e], entries
    assert str(NUM_STEPS) in entries and str(stalled_step) in entries

    # A finished run started again restores its last step and trains nothing.
    again = _finish(_start(workdir, tmp_path / "again.npz"))
    assert f"resumed from step {NUM_STEPS} of {workdir}" in again and not _loss_lines(again)
    _assert_same_state(tmp_path / "again.npz", tmp_path / "reference.npz")


# Fields of the trainer's log line that do not depend on wall time.
_LOGGED = ("loss", "mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy", "grad_norm")


def _cli_losses(text: str) -> dict[int, dict[str, str]]:
    lines = {}
    for m in re.finditer(r"^train step (\d+): (.*)$", text, re.M):
        fields = dict(f.split("=", 1) for f in m[2].split(", ") if "=" in f)
        lines[int(m[1])] = {k: fields.get(k) for k in _LOGGED}
    return lines


@pytest.mark.slow
def test_pretrain_cli_sigterm_and_resume_equals_uninterrupted(tmp_path):
    """`bert-jax pretrain`, stopped by SIGTERM at step k and run again, ends with the same
    params and optimizer state as one uninterrupted run, logging the same numbers from k on."""
    steps = 12

    def start(workdir):
        command = [sys.executable, "-m", "bert_jax", "pretrain"] + [
            "--config=configs/pretrain.py:tiny,runlocal",
            f"--workdir={workdir}",
            "--config.data.synthetic=True",
            "--config.model.vocab_size=256",
            "--config.model.dtype=float32",
            f"--config.train.num_steps={steps}",
            "--config.train.batch_size=8",
            "--config.train.log_every_steps=1",
            "--config.train.eval_every_steps=1000",
            "--config.data.max_seq_length=32",
            "--config.data.max_predictions_per_seq=5",
            "--config.checkpoint.save_every_steps=4",
            "--config.checkpoint.save_every_minutes=0",
        ]
        return subprocess.Popen(
            command,
            cwd=REPO,
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    reference = _cli_losses(_finish(start(tmp_path / "reference")))
    assert sorted(reference) == list(range(1, steps + 1))
    proc = start(tmp_path / "run")
    so_far = _read_until(proc, r"^train step 2:")
    proc.send_signal(signal.SIGTERM)
    first = _finish(proc, so_far)
    k = int(re.search(r"preempted: saved step (\d+)", first)[1])
    assert k < steps
    second = _finish(start(tmp_path / "run"))
    assert f"start: resumed from step {k} of {tmp_path / 'run'}" in second, second[-3000:]
    resumed = _cli_losses(second)
    assert sorted(resumed) == list(range(k + 1, steps + 1))
    assert all(resumed[s] == reference[s] for s in resumed), (resumed, reference)
    for s, values in _cli_losses(first).items():
        assert values == reference[s]
    final_run = checkpoint_restore.read_arrays(tmp_path / "run" / "checkpoints" / str(steps))
    final_ref = checkpoint_restore.read_arrays(tmp_path / "reference" / "checkpoints" / str(steps))
    flat_run = jax.tree_util.tree_flatten_with_path(final_run)[0]
    flat_ref = dict(jax.tree_util.tree_flatten_with_path(final_ref)[0])
    assert len(flat_run) == len(flat_ref) and int(final_run["step"]) == steps
    for path, value in flat_run:
        np.testing.assert_array_equal(value, flat_ref[path], err_msg=jax.tree_util.keystr(path))


def test_a_truncated_checkpoint_is_the_last_line_printed(tmp_path):
    """`bert-jax pretrain` resuming from a damaged step: exit 2 and the one-line error last on
    stderr, with no traceback after it (Orbax's closed event loop used to print one at exit)."""
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "bert_jax", "pretrain"] + [
        "--config=configs/pretrain.py:tiny",
        f"--workdir={workdir}",
        "--config.data.synthetic=True",
        "--config.model.vocab_size=128",
        "--config.model.dtype=float32",
        "--config.mesh.data=1",
        "--config.mesh.fsdp=8",  # 8 shards per array: many reads in flight when one fails
        "--config.train.batch_size=8",
        "--config.train.eval_batches=0",
        "--config.data.max_seq_length=32",
        "--config.data.max_predictions_per_seq=5",
        "--config.optimizer.warmup_steps=0",
        "--config.checkpoint.save_every_minutes=0",
    ]
    env = {**_env(tmp_path), "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}

    def run(steps):
        return subprocess.run(
            [*command, f"--config.train.num_steps={steps}"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    first = run(1)
    assert first.returncode == 0, first.stderr[-3000:]
    for file in (workdir / "checkpoints" / "1" / "state").rglob("*"):
        if file.is_file() and "/d/" in str(file):
            file.write_bytes(file.read_bytes()[: file.stat().st_size // 3])
    second = run(2)
    assert second.returncode == 2, second.stderr[-3000:]
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("bert-jax pretrain: error: checkpoint "), second.stderr[-3000:]
    assert "checkpoints/1 is unreadable" in lines[-1]
    assert "Traceback" not in second.stderr and "Event loop is closed" not in second.stderr


# ------------------------------------------------------------------ the training script


def _stall_commit_of(step: int) -> None:
    """Make the commit (tmp dir -> step dir rename) of `step` hang: files written, not final."""
    import asyncio

    from orbax.checkpoint._src.path import atomicity

    original = atomicity.AtomicRenameTemporaryPath.finalize

    async def finalize(self):
        if self.get_final().name == str(step):
            print(f"stalled in the commit of step {step}", flush=True)
            await asyncio.sleep(3600)
        return await original(self)

    atomicity.AtomicRenameTemporaryPath.finalize = finalize


def _train(workdir: str, out: str) -> None:
    import time

    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    from bert_jax.checkpoint import manager as checkpointing
    from tests.checkpoint import fixtures as fx

    if os.environ.get(STALL_ENV):
        _stall_commit_of(int(os.environ[STALL_ENV]))
    model = fx.pretraining()
    tx = optax.adamw(3e-3)
    batch_size, length = 4, fx.LENGTH

    def batch_at(index: int):
        rng = np.random.default_rng([7, index])  # the data position alone decides the batch
        ids = rng.integers(1, fx.TINY.vocab_size, (batch_size, length), dtype=np.int32)
        return ids, rng.integers(0, 2, (batch_size,), dtype=np.int32)

    @jax.jit
    def train_step(state, ids, nsp_labels):
        def loss_fn(params):
            out = model.apply(
                {"params": params},
                ids,
                jnp.zeros_like(ids),
                jnp.ones_like(ids),
                deterministic=False,
                rngs={"dropout": jax.random.fold_in(state.rng, state.step)},
            )
            mlm = optax.softmax_cross_entropy_with_integer_labels(out["mlm_logits"], ids)
            nsp = optax.softmax_cross_entropy_with_integer_labels(out["nsp_logits"], nsp_labels)
            return mlm.mean() + nsp.mean()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), loss

    target = fx.abstract_state(model, fx.mesh(1, 1, 1))
    shardings = fx.shardings_of(target)

    def init_state():
        return jax.jit(lambda: nn.unbox(fx.init_fn(model, seed=11)()), out_shardings=shardings)()

    options = fx.options(save_every_steps=SAVE_EVERY, keep_last=3)
    ckpt = checkpointing.Checkpointer(workdir, options, fx.metadata())
    state, data_state, source = checkpointing.resume_or_init(
        ckpt, fx.run_config(), target, init_state
    )
    print(source, flush=True)
    position = (data_state or {}).get("batches_consumed", 0)
    while int(state.step) < NUM_STEPS:
        state, loss = train_step(state, *batch_at(position))
        position += 1
        step = int(state.step)
        print(f"step {step} loss {float(loss)!r}", flush=True)
        ckpt.save(step, state, {"batches_consumed": position})
        if ckpt.reached_preemption(step):
            ckpt.save(step, state, {"batches_consumed": position}, force=True)
            ckpt.wait()
            print(f"preempted: saved step {step}", flush=True)
            break
        time.sleep(0.2)  # room for a signal between steps, as a real step would leave
    else:
        ckpt.save(NUM_STEPS, state, {"batches_consumed": position}, force=True)
    ckpt.close()
    flat = jax.tree_util.tree_flatten_with_path(fx.host(state))[0]
    np.savez(out, **{jax.tree_util.keystr(path): leaf for path, leaf in flat})


if __name__ == "__main__":
    _train(sys.argv[1], sys.argv[2])
