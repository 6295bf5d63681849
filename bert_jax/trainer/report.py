"""What a run reports: console lines with a progress bar and ETA (tqdm), TensorBoard scalars
(tensorboardX: no TensorFlow in the loop), and throughput with model FLOP utilisation, between
log steps and over the whole run (the end-of-run table, `bert_jax/trainer/run_summary.py`).

Only process 0 writes; every other process gets a reporter that stays silent. The step bar is
drawn unless BERT_JAX_PROGRESS=0 (`bert_jax/progress.py`).
"""

from __future__ import annotations

import logging
import time

import jax

from bert_jax import progress
from bert_jax.trainer import flops

log = logging.getLogger("bert_jax.trainer.loop")


class Throughput:
    """Sequences/s, tokens/s and model FLOP/s (MFU where the chip's peak is known) between two
    `measure` calls, from each step's own work (`add`), so batches of varying length (dynamic
    padding) count what they computed. Time starts at the first step read (after compilation),
    not at launch.

    MFU is against the chip's peak for the model's compute `dtype` (a float32 model against
    the float32 matmul peak), so it never looks low because the bfloat16 peak was assumed.

    `overall` gives the same rates over the whole run: from the first step read to the last,
    less the pauses (evaluation, checkpoint hand-over) marked by `pause` ... `restart`."""

    def __init__(self, dtype: str):
        self.devices = jax.device_count()
        kind = jax.devices()[0].device_kind
        self.peak = flops.peak_flops(kind, dtype, jax.config.jax_default_matmul_precision)
        self.kind = kind
        self._since: tuple[float, int] | None = None
        self._work = [0.0, 0, 0]  # FLOPs, sequences, tokens since `_since`
        self._run_since: tuple[float, int] | None = None  # the first step read: time, step
        self._run_work = [0.0, 0, 0]  # FLOPs, sequences, tokens since `_run_since`
        self._paused = 0.0  # seconds of pauses since `_run_since`
        self._pause_started: float | None = None

    @property
    def running(self) -> bool:
        return self._since is not None

    def add(self, step: int, step_flops: float, sequences: int, tokens: int) -> None:
        """Step `step` is done. The first one starts the clock (its time held compilation)."""
        if self._since is None:
            self._since = (time.perf_counter(), step)
            self._run_since = self._since
            return
        for work in (self._work, self._run_work):
            work[0] += step_flops
            work[1] += sequences
            work[2] += tokens

    def pause(self) -> None:
        """Training stops here for a while (evaluation, a checkpoint) until `restart`."""
        if self._since is not None:
            self._pause_started = time.perf_counter()

    def restart(self, step: int) -> None:
        """Count from here (after a pause the rate should not include)."""
        if self._since is not None:
            now = time.perf_counter()
            if self._pause_started is not None:
                self._paused += now - self._pause_started
                self._pause_started = None
            self._since = (now, step)
            self._work = [0.0, 0, 0]

    def overall(self, step: int) -> dict[str, float]:
        """The rates of `measure` over the whole run up to `step` (the last step read), plus
        `seconds_per_step`; {} before two steps were read."""
        if self._run_since is None:
            return {}
        then, first = self._run_since
        steps, seconds = step - first, time.perf_counter() - then - self._paused
        out = self._rates(steps, seconds, *self._run_work)
        if out:
            out["seconds_per_step"] = seconds / steps
        return out

    def measure(self, step: int) -> dict[str, float]:
        if self._since is None:
            return {}
        then, first = self._since
        now = time.perf_counter()
        steps, seconds = step - first, now - then
        (work_flops, sequences, tokens), self._work = self._work, [0.0, 0, 0]
        self._since = (now, step)
        return self._rates(steps, seconds, work_flops, sequences, tokens)

    def _rates(self, steps, seconds, work_flops, sequences, tokens) -> dict[str, float]:
        if steps <= 0 or seconds <= 0:
            return {}
        model_flops = work_flops / seconds
        out = {
            "steps_per_second": steps / seconds,
            "sequences_per_second": sequences / seconds,
            "tokens_per_second": tokens / seconds,
        }
        if self.peak:
            out["tflops_per_device"] = model_flops / self.devices / 1e12
            out["mfu"] = model_flops / (self.devices * self.peak)
        else:  # CPU and unknown chips: the achieved rate only
            out["gflops_per_device"] = model_flops / self.devices / 1e9
        return out


class Reporter:
    def __init__(self, workdir: str | None, total_steps: int, first_step: int, enabled: bool):
        self.enabled = enabled
        self.writer = None
        self.bar = None
        if not enabled:
            return
        # The step bar is the run's log: drawn in a log file too, unless BERT_JAX_PROGRESS=0.
        self.bar = progress.bar(
            total=total_steps,
            initial=first_step,
            unit="step",
            smoothing=0.1,
            progress=progress.setting() is not False,
        )
        if workdir:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(logdir=f"{workdir.rstrip('/')}/tensorboard")

    def advance(self, steps: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)
        log.info(text)

    def scalars(self, step: int, prefix: str, values: dict[str, float]) -> None:
        if not self.enabled or not values:
            return
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{prefix}/{key}", value, step)
        self.line(f"{prefix} step {step}: " + ", ".join(_fmt(k, v) for k, v in values.items()))
        if prefix == "train" and self.bar is not None and "loss" in values:
            self.bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
        if self.bar is not None:
            self.bar.close()


def _fmt(key: str, value: float) -> str:
    if key == "learning_rate":
        return f"{key}={value:.3e}"
    if key in ("sequences_per_second", "tokens_per_second"):
        return f"{key}={value:,.0f}"
    if key == "mfu":
        return f"mfu={100 * value:.1f}%"
    return f"{key}={value:.4g}"
