"""`train_and_evaluate(config, workdir)`: the pretraining loop.

Setup checks everything it can before compiling (mesh, batch split, sequence length, data), then
builds the state directly in its sharded layout, or restores it (own checkpoint > resume_from >
init_from > scratch; `bert_jax/checkpoint/manager.py`).

The loop never waits for the step it just dispatched: it dispatches step N, then reads the
metrics of step N-1 (which are done or nearly so), so the host prepares the next batch while
the device computes. It waits for step N itself only where it must: before a checkpoint (a
state is saved only after its loss and gradient norm were seen to be finite), an evaluation,
and the end. A non-finite metric stops the run without saving the state that produced it; an
evaluation that fails saves the step first, then raises. A run whose data has no held-out
examples trains without evaluation (one warning at setup).
"""

from __future__ import annotations

import dataclasses
import sys
import time

import jax

from bert_jax import sharding
from bert_jax.checkpoint import manager as checkpointing
from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig, preset
from bert_jax.model.heads import BertForPreTraining
from bert_jax.tasks import pretraining_data as pretrain_data
from bert_jax.trainer import accumulate as metrics
from bert_jax.trainer import optim
from bert_jax.trainer import state as train_state
from bert_jax.trainer import step as train_step
from bert_jax.trainer.flops import train_flops
from bert_jax.trainer.report import Reporter, Throughput


class Diverged(RuntimeError):
    """A loss or gradient norm became NaN or infinite; the run stopped without saving it."""


def bert_config(model, vocab_size: int, seq_length: int, num_predictions: int) -> BertConfig:
    """The architecture: the size preset, overridden by every model field the config sets (None
    keeps the preset's), with the data's vocabulary unless model.vocab_size asks for more."""
    fields = {k: v for k, v in model.items() if k not in ("size", "vocab_size") and v is not None}
    if model.vocab_size and model.vocab_size < vocab_size:
        raise UserError(
            f"model.vocab_size {model.vocab_size} is smaller than the data's vocabulary "
            f"({vocab_size} tokens)"
        )
    config = preset(model.size, "model.", vocab_size=model.vocab_size or vocab_size, **fields)
    if seq_length > config.max_position_embeddings:
        raise UserError(
            f"data.max_seq_length {seq_length} exceeds the position table "
            f"(model.max_position_embeddings {config.max_position_embeddings})"
        )
    if not 1 <= num_predictions <= seq_length:
        raise UserError(
            f"data.max_predictions_per_seq {num_predictions} must be in [1, {seq_length}]"
        )
    return config


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
    data: pretrain_data.PretrainData
    model_config: BertConfig
    sharded: train_state.ShardedInit
    step_fn: object
    eval_fn: object
    nsp: bool


def setup(config, workdir: str | None) -> Setup:
    """Check the config against the devices and the data, and build (not compile) the steps."""
    t, data_cfg = config.train, config.data
    seq, predictions = data_cfg.max_seq_length, data_cfg.max_predictions_per_seq
    if t.num_steps < 1 or t.log_every_steps < 1 or t.eval_every_steps < 1:
        raise UserError("train.num_steps, log_every_steps and eval_every_steps must be positive")
    mesh = sharding.make_mesh(config.mesh)
    sharding.check_batch(t.batch_size, t.accum_steps, mesh)
    feed = sharding.host_feed(mesh)
    eval_size = eval_batch_size(config, mesh)
    data = pretrain_data.open_data(config, eval_size, feed, workdir, warn=_warn)
    model_config = bert_config(config.model, data.vocab_size, seq, predictions)
    model = BertForPreTraining(model_config)
    tx, schedule = optim.make_optimizer(config.optimizer, t.num_steps)
    sharded = train_state.plan(train_state.init_fn(model, tx, config.seed, seq, predictions), mesh)
    nsp = data_cfg.mode != "mlm_only"
    step = train_step.make_train_step(
        model, tx, schedule, mesh, t.accum_steps, 1.0 if nsp else 0.0, sharded.shardings.params
    )
    return Setup(
        config=config,
        workdir=workdir,
        mesh=mesh,
        feed=feed,
        data=data,
        model_config=model_config,
        sharded=sharded,
        step_fn=train_step.jit_train_step(step, sharded.shardings, mesh),
        eval_fn=train_step.jit_eval_step(
            train_step.make_eval_step(model), sharded.shardings.params, mesh
        ),
        nsp=nsp,
    )


def train_and_evaluate(config, workdir: str | None) -> dict[str, float]:
    """Run `config` to train.num_steps (checkpoints and TensorBoard under `workdir`, none when
    it is None); returns the last train and eval summaries."""
    run = setup(config, workdir)
    ckpt = None
    if workdir:
        ckpt = checkpointing.Checkpointer(
            workdir,
            config.checkpoint,
            {
                "model": run.model_config.to_dict(),
                "vocab_fingerprint": run.data.vocab_fingerprint,
                "scan_layers": run.model_config.scan_layers,
                "run_config": config.to_dict(),
            },
        )
    started = time.perf_counter()
    try:
        if ckpt is not None:
            state, data_state, source = checkpointing.resume_or_init(
                ckpt, config, run.sharded.abstract, lambda: train_state.create(run.sharded)
            )
        else:
            state, data_state, source = train_state.create(run.sharded), None, "scratch"
        first_step = int(jax.device_get(state.step))
        reporter = Reporter(
            workdir, config.train.num_steps, first_step, enabled=jax.process_index() == 0
        )
        try:
            reporter.line(_banner(run, state, source, first_step))
            return _loop(run, state, data_state, ckpt, reporter, started)
        finally:
            reporter.close()
    finally:
        if ckpt is not None:
            ckpt.close()


def _banner(run: Setup, state, source: str, step: int) -> str:
    c, t = run.model_config, run.config.train
    return (
        f"bert-jax pretrain: {c.num_layers} layers, hidden {c.hidden_size}, "
        f"{train_state.param_count(state.params) / 1e6:.1f}M params, vocab {c.vocab_size}; "
        f"mesh {dict(run.mesh.shape)} over {jax.device_count()} {jax.devices()[0].device_kind} "
        f"devices in {jax.process_count()} processes; global batch {t.batch_size} x "
        f"{run.config.data.max_seq_length} (accum {t.accum_steps}); start: {source}, step {step}"
    )


def _loop(run: Setup, state, data_state, ckpt, reporter, started) -> dict[str, float]:
    t, data = run.config.train, run.data
    seq, predictions = run.config.data.max_seq_length, run.config.data.max_predictions_per_seq
    step = int(jax.device_get(state.step))
    stream = data.train(data_state)
    throughput = Throughput(
        train_flops(run.model_config, t.batch_size, seq, predictions),
        t.batch_size,
        seq,
        run.model_config.dtype,
    )
    totals = metrics.Accumulator()
    summaries: dict[str, float] = {}
    pending = None  # (step, device metrics): dispatched, not yet read
    last_saved = ckpt.latest_step() if ckpt is not None else None

    def settle():
        """Read the pending step's metrics; stop on NaN/inf; log at log steps."""
        nonlocal pending
        if pending is None:
            return
        done, values = pending[0], jax.device_get(pending[1])
        pending = None
        bad = metrics.non_finite(values)
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
        throughput.start(done)
        totals.add(values)
        if done % t.log_every_steps == 0 or done == t.num_steps:
            summary = {**totals.summary(run.nsp), **throughput.measure(done)}
            summaries.update({f"train/{k}": v for k, v in summary.items()})
            reporter.scalars(done, "train", summary)
            totals.reset()

    while step < t.num_steps:
        batch = sharding.to_global_batch(next(stream), run.feed)
        state, step_metrics = run.step_fn(state, batch)
        step += 1
        settle()  # the previous step's metrics
        pending = (step, step_metrics)
        reporter.advance()

        last = step == t.num_steps
        eval_due = data.has_eval and (step % t.eval_every_steps == 0 or last)
        preempted = ckpt is not None and ckpt.reached_preemption(step)
        save_due = ckpt is not None and (preempted or last or ckpt.should_save(step))
        if not (eval_due or save_due):
            continue
        settle()
        eval_summary, eval_error = None, None
        if eval_due:
            try:
                eval_summary = evaluate(run.eval_fn, state.params, data, run.feed, run.nsp)
            except Exception as e:  # re-raised below, once the step is saved
                if ckpt is None:
                    raise
                # The state is sound (its metrics were finite); only evaluation failed: keep it.
                eval_error, save_due = e, True
            else:
                summaries.update({f"eval/{k}": v for k, v in eval_summary.items()})
                reporter.scalars(step, "eval", eval_summary)
        if save_due:
            position = pretrain_data.stream_state(stream, run.feed)
            forced = preempted or last or eval_error is not None
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
    return summaries


def evaluate(eval_fn, params, data, feed, nsp: bool) -> dict[str, float]:
    """MLM/NSP loss and accuracy over the held-out batches (all dispatched, then read)."""
    sums = [eval_fn(params, sharding.to_global_batch(b, feed)) for b in data.evaluation()]
    totals = metrics.Accumulator()
    for values in jax.device_get(sums):
        totals.add(values)
    return totals.summary(nsp)
