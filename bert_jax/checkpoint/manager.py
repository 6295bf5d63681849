"""Orbax checkpoints of a training run: async saves on a step and time schedule, retention,
preemption, and where a run starts from.

`resume_or_init` picks the start of a run, first match wins:

  1. the run's own latest checkpoint in WORKDIR/checkpoints: a restarted or preempted run
     continues exactly (params, optimizer state, step, RNG, data position). A finished run
     restores its last step, so its loop ends at once instead of training again.
  2. `config.resume_from`: another workdir or one of its step directories: the full state.
  3. `config.init_from` with `checkpoint.init_optimizer`: a new phase of one training (two-phase
     pretraining: sequence length 128, then 512 with another batch size). Params AND optimizer
     state of a bert-jax checkpoint of the same model and optimizer; the step count continues,
     or restarts at 0 with `checkpoint.reset_step` (the optimizer's own counts with it, so the
     new phase's schedule starts over); the data position is fresh, since the data changed.
  4. `config.init_from`: parameters only (`bert_jax/checkpoint/init_from.py`: a bert-jax
     checkpoint, a Hugging Face directory or a Google TF checkpoint), with fresh heads where
     the model has new ones, a fresh optimizer state and step 0.
  5. scratch: `init_state_fn()`.

Every restore lands in the *current* mesh: the target is an abstract state whose leaves carry
the shardings of this run, whatever mesh, device count or process count wrote the checkpoint.

Saves never replace a step that exists, and nothing is deleted except by the retention policy
after a newer save has committed, so a run that fails leaves earlier checkpoints untouched.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import signal
import threading
import time

import flax.linen as nn
import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from bert_jax import paths
from bert_jax.checkpoint import metadata as layout
from bert_jax.checkpoint import restore as checkpoint_restore
from bert_jax.errors import UserError

log = logging.getLogger(__name__)
policies = ocp.checkpoint_managers


@dataclasses.dataclass(frozen=True)
class _SaveTime:
    """Satisfies Orbax's PolicyCheckpointInfo: a step and when it happened."""

    step: int
    time: datetime.datetime
    metrics: dict | None = None


@dataclasses.dataclass
class EveryMinutes:
    """Save when `minutes` have passed since the last checkpoint or, before the first one of
    this run, since the run started (Orbax's continuous policy counts from the last checkpoint
    only, which would save at the first step of every restart).

    The decision is Orbax's ContinuousCheckpointingPolicy: taken on the primary host and
    broadcast, because the hosts' clocks disagree and a save must be collective."""

    minutes: float
    started: datetime.datetime

    def should_save(self, step, previous_steps, *, context) -> bool:
        since = self.started
        if previous_steps and previous_steps[-1].time > since:
            since = previous_steps[-1].time
        continuous = policies.ContinuousCheckpointingPolicy(
            minimum_interval_secs=self.minutes * 60.0
        )
        return continuous.should_save(step, [_SaveTime(step.step, since)], context=context)


def _option(options, name: str, default):
    value = options.get(name, default) if options is not None else default
    return default if value is None else value


def _save_policy(options, started: datetime.datetime):
    every_steps = int(_option(options, "save_every_steps", 0))
    every_minutes = float(_option(options, "save_every_minutes", 0))
    chosen: list = [policies.PreemptionCheckpointingPolicy()]
    if every_steps > 0:
        chosen.append(policies.FixedIntervalPolicy(every_steps))
    if every_minutes > 0:
        chosen.append(EveryMinutes(every_minutes, started))
    return policies.AnySavePolicy(chosen)


@dataclasses.dataclass
class Best:
    """The metric a run keeps its best checkpoint by (fine-tuning: the task's main metric)."""

    metric: str
    higher_is_better: bool = True

    def pick(self, scored: dict[int, float]) -> int | None:
        """The best step of {step: value}; the earliest among equals (reached first)."""
        if not scored:
            return None
        sign = 1.0 if self.higher_is_better else -1.0
        return max(sorted(scored), key=lambda step: sign * scored[step])


@dataclasses.dataclass
class KeepBest:
    """Orbax preservation policy: keep the checkpoint with the best `best.metric`. The metrics
    of this session's saves come from Orbax's checkpoint info; those of earlier sessions from
    the metrics stored with each step."""

    best: Best
    directory: object

    def _value(self, info) -> float | None:
        metrics = info.metrics
        if metrics is None:
            try:
                metrics = layout.read_metrics(self.directory / str(info.step))
            except UserError:
                metrics = None
        value = (metrics or {}).get(self.best.metric)
        return None if value is None or not np.isfinite(value) else float(value)

    def should_preserve(self, checkpoints, *, context) -> list[bool]:
        scored = {info.step: v for info in checkpoints if (v := self._value(info)) is not None}
        best = self.best.pick(scored)
        return [info.step == best for info in checkpoints]


def best_step(directory, best: Best) -> int | None:
    """The committed step under `directory` with the best stored `best.metric` (None: no step
    has it). Reads only the metrics files: safe beside a run that is still writing."""
    scored = {}
    for step in layout.committed_steps(directory):
        value = (layout.read_metrics(directory / str(step)) or {}).get(best.metric)
        if value is not None and np.isfinite(value):
            scored[step] = float(value)
    return best.pick(scored)


def _preservation_policy(options, best: Best | None = None, directory=None):
    """The last `keep_last` checkpoints (0: all), every `keep_every`-th step forever, and the
    best by `best`'s metric."""
    keep_last = int(_option(options, "keep_last", 0))
    keep_every = int(_option(options, "keep_every", 0))
    chosen: list = [policies.LatestN(keep_last if keep_last > 0 else None)]
    if keep_every > 0:
        chosen.append(policies.EveryNSteps(keep_every))
    if best is not None:
        chosen.append(KeepBest(best, directory))
    return chosen[0] if len(chosen) == 1 else policies.AnyPreservationPolicy(chosen)


def _json_ready(values: dict) -> dict:
    """Values as JSON (numpy and JAX scalars to floats/ints; anything else to its repr), so a
    checkpoint never fails to write because of one odd config value."""

    def convert(value):
        if isinstance(value, (np.generic, np.ndarray, jax.Array)):
            return np.asarray(value).tolist()
        return repr(value)

    return json.loads(json.dumps(values, default=convert))


class Checkpointer:
    """Saves a run's state under WORKDIR/checkpoints; see the module docstring for the order.

    `options` (config.checkpoint): save_every_steps, save_every_minutes, keep_last, keep_every
    (milestones kept forever), async_save. `metadata`: {"model": BertConfig.to_dict(),
    "vocab_fingerprint", "scan_layers", "run_config"}, stored as JSON with every checkpoint.

    On SIGTERM (single process) or Orbax's preemption notice (JAX's preemption sync point,
    agreed by all processes), `reached_preemption(step)` turns True; the loop then calls
    `save(step, ..., force=True)`, `wait()` and stops. `save` also saves by itself at that
    step, so either order works."""

    def __init__(self, workdir, options, metadata: dict, best: Best | None = None):
        self.directory = layout.checkpoint_dir(workdir)
        self.best = best
        # A missing bucket or absent credentials: one line naming the path, before any work.
        paths.check_accessible(self.directory, writable=True)
        self.metadata = _json_ready(dict(metadata))
        self._options = options
        self._started = datetime.datetime.now(tz=datetime.timezone.utc)
        self._manager: ocp.CheckpointManager | None = None
        self._sigterm = threading.Event()
        self._preemption_logged = False
        self._decided: tuple[int | None, bool] = (None, False)  # (step, should_save answer)
        self._handler_installed = False
        self._previous_handler = None
        # The directory is created at the first save: a run that fails before it leaves the
        # workdir as it was.
        if self.directory.is_dir():
            self._open()
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            # With several processes JAX's preemption service owns SIGTERM and agrees on the
            # step to stop at; a handler here would replace it with one host's view.
            self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
            self._handler_installed = True

    def _open(self) -> ocp.CheckpointManager:
        if self._manager is None:
            manager_options = ocp.CheckpointManagerOptions(
                save_decision_policy=_save_policy(self._options, self._started),
                preservation_policy=_preservation_policy(self._options, self.best, self.directory),
                enable_async_checkpointing=bool(_option(self._options, "async_save", True)),
                # Interrupted saves (a kill during the write) are never read; clear them.
                cleanup_tmp_directories=True,
                create=True,
            )
            self._manager = ocp.CheckpointManager(
                self.directory,
                options=manager_options,
                item_handlers=checkpoint_restore.item_handlers(),
            )
        return self._manager

    def _on_sigterm(self, signum, frame):
        del signum, frame
        self._sigterm.set()

    # -- reading -------------------------------------------------------------------------

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def all_steps(self) -> list[int]:
        if self._manager is None:
            return layout.committed_steps(self.directory)
        return sorted(self._manager.all_steps())

    def best_step(self) -> int | None:
        """The committed step with the best `self.best` metric (None: no metric or none scored)."""
        return best_step(self.directory, self.best) if self.best is not None else None

    # -- writing -------------------------------------------------------------------------

    def should_save(self, step: int) -> bool:
        """Whether `save(step, ...)` will write (schedule, time, preemption), decided once per
        step: the loop can ask before it hands the state over, and `save` keeps the answer."""
        step = int(step)
        if step in self.all_steps():
            return False
        if self._sigterm.is_set():
            return True
        if self._decided[0] != step:
            self._decided = (step, bool(self._open().should_save(step)))
        return self._decided[1]

    def save(self, step: int, state, data_state: dict | None, metrics=None, force=False) -> bool:
        """Start an async save of `state` at `step` when the schedule says so (or `force`, or
        after a preemption notice). Returns whether a save started. A step that is already
        saved is never written again."""
        step = int(step)
        if step in self.all_steps():
            return False
        if not (force or self.should_save(step)):
            return False
        manager = self._open()
        items = {
            layout.STATE_ITEM: ocp.args.StandardSave(nn.meta.unbox(state)),
            layout.DATA_ITEM: ocp.args.JsonSave(_json_ready(dict(data_state or {}))),
            layout.METADATA_ITEM: ocp.args.JsonSave(self._step_metadata(step)),
        }
        if metrics:
            items[layout.METRICS_ITEM] = ocp.args.JsonSave(_json_ready(dict(metrics)))
        # The decision is taken above; Orbax must not take it a second time.
        # `metrics` again for the preservation policy (Orbax keeps them in its step info).
        saved = manager.save(
            step,
            args=ocp.args.Composite(**items),
            metrics=_json_ready(dict(metrics)) if metrics else None,
            force=True,
        )
        if saved:
            log.info("checkpoint: saving step %d to %s", step, self.directory)
        return bool(saved)

    def _step_metadata(self, step: int) -> dict:
        return {
            **self.metadata,
            "format_version": layout.FORMAT_VERSION,
            "step": step,
            "saved_unix_time": time.time(),
            "process_count": jax.process_count(),
            "device_count": jax.device_count(),
        }

    def reached_preemption(self, step: int) -> bool:
        """True once SIGTERM arrived or all processes reached JAX's preemption sync point."""
        if self._sigterm.is_set():
            preempted = True
        elif self._manager is not None:
            preempted = bool(self._manager.reached_preemption(step))
        else:
            preempted = _preemption_sync_point(step)
        if preempted and not self._preemption_logged:
            self._preemption_logged = True
            log.warning(
                "preemption notice: saving step %d to %s and stopping", step, self.directory
            )
        return preempted

    def wait(self) -> None:
        """Block until the pending save is on disk (committed)."""
        if self._manager is not None:
            self._manager.wait_until_finished()

    def close(self) -> None:
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()
            self._manager = None
        if self._handler_installed:
            # None: the previous handler was installed outside Python; the default is closest.
            signal.signal(signal.SIGTERM, self._previous_handler or signal.SIG_DFL)
            self._handler_installed = False

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _preemption_sync_point(step: int) -> bool:
    try:
        return bool(multihost_utils.reached_preemption_sync_point(step))
    except RuntimeError:  # no jax.distributed preemption service in this process
        return False


def resume_or_init(ckpt: Checkpointer, config, abstract_state, init_state_fn, encoder_only=False):
    """(state, data_state, source) in the order of the module docstring: own latest
    checkpoint > config.resume_from (full state) > config.init_from with
    checkpoint.init_optimizer (params and optimizer state, fresh data position) >
    config.init_from (params only) > scratch.

    `abstract_state`: the TrainState as jax.ShapeDtypeStruct leaves carrying this run's
    shardings; `init_state_fn()`: a freshly initialised, sharded TrainState. `encoder_only`:
    init_from takes the encoder and no head (fine-tuning). `data_state` is
    None unless a full state was restored. `source` is one line for the log."""
    init_from = config.get("init_from") if config is not None else None
    init_optimizer = bool(_option(ckpt._options, "init_optimizer", False))
    if init_optimizer and not init_from:
        raise UserError(
            "checkpoint.init_optimizer is set but init_from is empty: set --config.init_from "
            "to the previous phase's workdir"
        )
    latest = ckpt.latest_step()
    if latest is not None:
        step_dir = ckpt.directory / str(latest)
        layout.check_same_model(layout.read_metadata(step_dir), ckpt.metadata, str(ckpt.directory))
        state, data_state = checkpoint_restore.restore_state(step_dir, abstract_state)
        return state, data_state, f"resumed from step {latest} of {ckpt.directory.parent}"

    resume_from = config.get("resume_from") if config is not None else None
    if resume_from:
        root, step = layout.resolve(resume_from)
        step_dir = root / str(step)
        layout.check_same_model(layout.read_metadata(step_dir), ckpt.metadata, str(step_dir))
        state, data_state = checkpoint_restore.restore_state(step_dir, abstract_state)
        return state, data_state, f"resume_from {step_dir}: step {step}, full state"

    if init_from and init_optimizer:
        reset = bool(_option(ckpt._options, "reset_step", False))
        train = config.get("train") if config is not None else None
        num_steps = train.get("num_steps") if train is not None else None
        return _next_phase(ckpt, init_from, abstract_state, reset, num_steps)

    state = init_state_fn()
    if init_from:
        from bert_jax.checkpoint import init_from as init_from_lib

        params, report = init_from_lib.load_encoder(
            init_from,
            state.params,
            vocab_fingerprint=ckpt.metadata.get("vocab_fingerprint"),
            encoder_only=encoder_only,
        )
        return state.replace(params=params), None, f"init_from {report.summary()}"
    return state, None, "scratch"


def _next_phase(ckpt: Checkpointer, init_from, abstract_state, reset: bool, num_steps):
    """The state of another run's checkpoint as the start of a new phase: params, optimizer
    state and RNG restored; the step (and the optimizer's counts) zeroed when `reset`; no data
    position, so the new data starts at its beginning."""
    try:
        root, step = layout.resolve(init_from)
    except UserError as e:
        raise UserError(f"checkpoint.init_optimizer needs a bert-jax checkpoint: {e}") from None
    step_dir = root / str(step)
    layout.check_same_model(layout.read_metadata(step_dir), ckpt.metadata, str(step_dir))
    if not reset and num_steps is not None and step >= num_steps:
        raise UserError(
            f"init_from {step_dir} is at step {step}, not before train.num_steps {num_steps}: "
            "the step count continues (set train.num_steps beyond it, or checkpoint.reset_step)"
        )
    state, _ = checkpoint_restore.restore_state(step_dir, abstract_state)
    if reset:
        state = restart_counts(state)
    kept = "reset to 0" if reset else f"continues from {step}"
    return (
        state,
        None,
        (
            f"init_from {step_dir}: params and optimizer state of step {step}, step {kept}, "
            "fresh data position"
        ),
    )


def restart_counts(state):
    """`state` with its step and every optimizer `count` (schedules, bias corrections) at 0,
    each zero placed like the value it replaces."""

    def zero(leaf):
        return jax.device_put(np.zeros(leaf.shape, leaf.dtype), leaf.sharding)

    def reset(path, leaf):
        named_count = bool(path) and getattr(path[-1], "name", None) == "count"
        return zero(leaf) if named_count else leaf

    opt_state = jax.tree_util.tree_map_with_path(reset, state.opt_state)
    return state.replace(step=zero(state.step), opt_state=opt_state)
