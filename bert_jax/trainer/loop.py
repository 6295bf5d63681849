"""`train_and_evaluate(config, workdir, build_task)`: the one training loop, for every task.

Setup checks everything it can before compiling (mesh, batch split, the task's data and model),
then builds the state directly in its sharded layout, or restores it (own checkpoint >
resume_from > init_from > scratch; `bert_jax/checkpoint/manager.py`).

The loop never waits for the step it just dispatched: it dispatches step N, then reads the
metrics of step N-1 (which are done or nearly so), so the host prepares the next batch while
the device computes. It waits for step N itself only where it must: before a checkpoint (a
state is saved only after its loss and gradient norm were seen to be finite), an evaluation,
and the end. A non-finite metric stops the run without saving the state that produced it; an
evaluation that fails saves the step first, then raises. A task without evaluation data trains
without evaluation. With a main metric, the best checkpoint is kept besides the last ones.
When the run ends (or stops for a preemption notice), process 0 prints the run's summary table
(`bert_jax/trainer/run_summary.py`) on stdout.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable

import jax

from bert_jax import progress, sharding
from bert_jax.checkpoint import manager as checkpointing
from bert_jax.errors import UserError
from bert_jax.tasks.base import StepPlan, Task
from bert_jax.trainer import accumulate, optim, run_summary
from bert_jax.trainer import state as train_state
from bert_jax.trainer import step as train_step
from bert_jax.trainer.report import Reporter, Throughput

# (config, workdir, feed, eval batch size, warn) -> the run's Task, its data opened.
BuildTask = Callable[..., Task]


@dataclasses.dataclass
class BestEvaluation:
    """The eval step's outputs of every split at the best step this session evaluated (by the
    task's main metric): a fine-tuning run writes its prediction files from them instead of
    evaluating that checkpoint again."""

    step: int
    value: float
    task: Task
    outputs: dict[str, list[dict]]  # split -> `eval_outputs`


class Summaries(dict):
    """The last train and eval summaries ("train/loss", "eval/accuracy", ...). `finished`: the
    run reached its last step (False when a preemption notice stopped it first); `first_step`
    and `last_step`: where this session started and stopped; `rates`: `Throughput.overall`;
    `best`: the session's best evaluation (None without a main metric or an evaluation)."""

    finished: bool = False
    first_step: int = 0
    last_step: int = 0
    rates: dict | None = None
    best: BestEvaluation | None = None


class Diverged(RuntimeError):
    """A loss or gradient norm became NaN or infinite; the run stopped without saving it."""


def eval_batch_size(config, mesh) -> int:
    t = config.train
    size = t.eval_batch_size or t.batch_size // t.accum_steps
    shards = sharding.batch_shards(mesh)
    if size % shards:
        raise UserError(
            f"eval batch {size} is not divisible by {shards} batch shards "
            "(set train.eval_batch_size)"
        )
    return size


def _warn(text: str) -> None:
    """A setup warning, once for the whole run (process 0 speaks)."""
    if jax.process_index() == 0:
        print(text, file=sys.stderr, flush=True)


@dataclasses.dataclass
class Setup:
    """Everything built from the config before the first step compiles."""

    config: object
    workdir: str | None
    mesh: object
    feed: sharding.HostFeed
    task: Task
    plan: StepPlan
    sharded: train_state.ShardedInit
    step_fn: object
    eval_fn: object


def setup(config, workdir: str | None, build_task: BuildTask, devices: list | None = None) -> Setup:
    """Check the config against the devices and the data, and build (not compile) the steps.

    `devices`: the mesh's devices (default: every device of every process); `bert-jax plan`
    passes the abstract devices of a TPU topology, and a `build_task` that reads no data."""
    t = config.train
    if t.log_every_steps < 1:
        raise UserError("train.log_every_steps must be positive")
    mesh = sharding.make_mesh(config.mesh, devices)
    sharding.check_batch(t.batch_size, t.accum_steps, mesh)
    feed = sharding.host_feed(mesh)
    task = build_task(config, workdir, feed, eval_batch_size(config, mesh), _warn)
    plan = task.plan(config)
    tx, schedule = optim.make_optimizer(config.optimizer, plan.num_steps)
    sharded = train_state.plan(train_state.init_fn(task, tx, config.seed), mesh)
    step = train_step.make_train_step(
        task, tx, schedule, mesh, t.accum_steps, sharded.shardings.params
    )
    return Setup(
        config=config,
        workdir=workdir,
        mesh=mesh,
        feed=feed,
        task=task,
        plan=plan,
        sharded=sharded,
        step_fn=train_step.jit_train_step(step, sharded.shardings, mesh),
        eval_fn=train_step.jit_eval_step(
            train_step.make_eval_step(task), sharded.shardings.params, mesh
        ),
    )


def checkpointer(run: Setup) -> checkpointing.Checkpointer:
    task = run.task
    best = checkpointing.Best(task.main_metric, task.higher_is_better) if task.main_metric else None
    metadata = {**task.checkpoint_metadata(), "run_config": run.config.to_dict()}
    return checkpointing.Checkpointer(run.workdir, run.config.checkpoint, metadata, best)


def train_and_evaluate(config, workdir: str | None, build_task: BuildTask) -> Summaries:
    """Train `build_task`'s task as `config` says (checkpoints and TensorBoard under `workdir`,
    none when it is None); returns the last train and eval summaries."""
    run = setup(config, workdir, build_task)
    ckpt = checkpointer(run) if workdir else None
    started = time.perf_counter()
    try:
        if ckpt is not None:
            state, data_state, source = checkpointing.resume_or_init(
                ckpt,
                config,
                run.sharded.abstract,
                lambda: train_state.create(run.sharded),
                encoder_only=run.task.init_encoder_only,
            )
        else:
            state, data_state, source = train_state.create(run.sharded), None, "scratch"
        first_step = int(jax.device_get(state.step))
        reporter = Reporter(workdir, run.plan.num_steps, first_step, jax.process_index() == 0)
        try:
            reporter.line(_banner(run, state, source, first_step))
            summaries = _loop(run, state, data_state, ckpt, reporter, started)
        finally:
            reporter.close()
    finally:
        if ckpt is not None:
            ckpt.close()
    if jax.process_index() == 0:  # after the last save is committed: the best step is on disk
        run_summary.training_table(
            run.task, run.plan, summaries, time.perf_counter() - started, ckpt
        ).print()
    return summaries


def _banner(run: Setup, state, source: str, step: int) -> str:
    t = run.config.train
    return (
        f"bert-jax {run.task.describe()}, "
        f"{train_state.param_count(state.params) / 1e6:.1f}M params; "
        f"mesh {dict(run.mesh.shape)} over {jax.device_count()} {jax.devices()[0].device_kind} "
        f"devices in {jax.process_count()} processes; global batch {t.batch_size} "
        f"(accum {t.accum_steps}), {run.plan.num_steps} steps; start: {source}, step {step}"
    )


def _loop(run: Setup, state, data_state, ckpt, reporter, started) -> Summaries:
    task, data, plan = run.task, run.task.data, run.plan
    log_every = run.config.train.log_every_steps
    step = int(jax.device_get(state.step))
    stream = data.train(data_state)
    throughput = Throughput(run.task.model_config.dtype)
    totals = accumulate.Accumulator()
    summaries = Summaries()
    summaries.first_step = step
    pending = None  # (step, device metrics, host batch stats): dispatched, not yet read
    last_saved = ckpt.latest_step() if ckpt is not None else None

    def settle():
        """Read the pending step's metrics; stop on NaN/inf; log at log steps."""
        nonlocal pending
        if pending is None:
            return
        done, values, done_stats = pending[0], jax.device_get(pending[1]), pending[2]
        pending = None
        bad = accumulate.non_finite(values)
        if bad:
            kept = f"step {last_saved}" if last_saved is not None else "none"
            raise Diverged(
                f"non-finite {', '.join(bad)} at step {done} (loss {float(values['loss'])}); "
                f"stopped without saving it (last checkpoint: {kept})"
            )
        if not throughput.running:
            reporter.line(
                f"step {done} done {time.perf_counter() - started:.1f}s after start "
                "(init or restore, compile, run)"
            )
        throughput.add(done, *done_stats)
        totals.add(values)
        if done % log_every == 0 or done == plan.num_steps:
            summary = {**totals.summary(task.train_summary), **throughput.measure(done)}
            summaries.update({f"train/{k}": v for k, v in summary.items()})
            reporter.scalars(done, "train", summary)
            totals.reset()

    while step < plan.num_steps:
        batch = sharding.to_global_batch(next(stream), run.feed)
        state, step_metrics = run.step_fn(state, batch)
        step += 1
        stats = _batch_stats(task, batch)
        settle()  # the previous step's metrics
        pending = (step, step_metrics, stats)
        reporter.advance()

        last = step == plan.num_steps
        eval_due = data.has_eval and (step % plan.eval_every_steps == 0 or last)
        preempted = ckpt is not None and ckpt.reached_preemption(step)
        save_due = ckpt is not None and (preempted or last or ckpt.should_save(step))
        if not (eval_due or save_due):
            continue
        settle()
        throughput.pause()
        eval_summary, eval_error = None, None
        if eval_due:
            try:
                outputs = split_outputs(run.eval_fn, state.params, task, run.feed)
                eval_summary = split_metrics(task, outputs)
            except Exception as e:  # re-raised below, once the step is saved
                if ckpt is None:
                    raise
                # The state is sound (its metrics were finite); only evaluation failed: keep it.
                eval_error, save_due = e, True
            else:
                summaries.update({f"eval/{k}": v for k, v in eval_summary.items()})
                reporter.scalars(step, "eval", eval_summary)
                summaries.best = _better(summaries.best, task, step, eval_summary, outputs)
        if save_due or (eval_summary and ckpt is not None and ckpt.best is not None):
            # With a main metric every evaluated step is saved: it may be the best one.
            position = data.stream_state(stream)
            forced = preempted or last or eval_error is not None or ckpt.best is not None
            if ckpt.save(step, state, position, eval_summary, force=forced):
                last_saved = step
        if eval_error is not None:
            ckpt.wait()
            raise eval_error
        # Evaluation and the checkpoint hand-over paused training: keep them out of the rate.
        throughput.restart(step)
        if preempted:
            ckpt.wait()
            reporter.line(f"preempted: saved step {step}; run the same command to resume")
            break
    settle()
    summaries.finished = step >= plan.num_steps
    summaries.last_step = step
    summaries.rates = throughput.overall(step)
    return summaries


def _batch_stats(task: Task, batch: dict) -> tuple[float, int, int]:
    """(model FLOPs, sequences, tokens) of one global batch, from its shapes only."""
    rows, length = batch["input_ids"].shape[0], batch["input_ids"].shape[-1]
    positions = 1
    for size in batch["input_ids"].shape[1:-1]:  # multiple choice: [B, C, L]
        positions *= size
    return task.step_flops(batch), rows, rows * positions * length


def eval_outputs(eval_fn, params, batches, feed, desc: str = "eval") -> list[dict]:
    """What the eval step brings back for every host batch, as host numpy (a collective: every
    process calls it with its rows of the same batches).

    Each batch is dispatched before the one before it is waited for, so the host prepares the
    next batch while the device computes, and the progress bar (`desc`, on stderr where
    `bert_jax.progress` shows bars) counts batches done, with an ETA where `batches` has a
    length (fine-tuning splits); a stream (pretraining's held-out shards) shows the count."""
    total = len(batches) if hasattr(batches, "__len__") else None
    outputs = []
    bar = progress.bar(
        total=total, desc=desc, unit="batch", leave=False, process_index=jax.process_index()
    )
    with bar:
        for batch in batches:
            outputs.append(eval_fn(params, sharding.to_global_batch(batch, feed)))
            if len(outputs) > 1:
                jax.block_until_ready(outputs[-2])
                bar.update()
        if outputs:
            jax.block_until_ready(outputs[-1])
            bar.update()
    return jax.device_get(outputs)


def split_outputs(eval_fn, params, task: Task, feed) -> dict[str, list[dict]]:
    """`eval_outputs` of every evaluation split (a collective)."""
    return {
        split: eval_outputs(
            eval_fn, params, batches, feed, "eval" if split == "eval" else f"eval {split}"
        )
        for split, batches in task.data.evaluation().items()
    }


def split_metrics(task: Task, outputs: dict[str, list[dict]]) -> dict[str, float]:
    """The task's metrics from `split_outputs`. One split: its metric names; several:
    `split/metric`."""
    if len(outputs) == 1:
        [(split, only)] = outputs.items()
        return task.evaluate(split, only)
    results = {}
    for split, split_out in outputs.items():
        results.update({f"{split}/{k}": v for k, v in task.evaluate(split, split_out).items()})
    return results


def _better(kept, task: Task, step: int, metrics: dict, outputs) -> BestEvaluation | None:
    """`kept`, or this step's evaluation where the checkpoint manager's rule (`Best.pick`: the
    best value, the earliest among equals) prefers it."""
    value = metrics.get(task.main_metric) if task.main_metric else None
    if value is None or not math.isfinite(value):
        return kept
    if kept is not None:
        best = checkpointing.Best(task.main_metric, task.higher_is_better)
        if best.pick({kept.step: kept.value, step: float(value)}) == kept.step:
            return kept
    return BestEvaluation(step, float(value), task, outputs)
