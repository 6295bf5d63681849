"""`bert-jax bench step`: time the real pretraining step (forward, backward, optimizer update,
dropout on) and report model FLOP/s against the same process's measured matmul rate, and MFU
against the chip's peak where it is known.

  bert-jax bench step                                      # bert-small, 16 x 128, P=20, fp32
  bert-jax bench step --size base --batch 256 --dtype bfloat16 --matmul 8192 --json  # GPU/TPU

Two sides of bert-jax are timed, with the same model, params and optimizer:
  masked         the normal step: the P masked positions are gathered before the last encoder
                 layer, which (with the MLM transform and tied vocab projection) runs only at
                 them and at [CLS];
  all positions  the same step fed every position as a prediction slot (labels weigh 0 where
                 not masked) and with the last layer computed everywhere (gather_last_layer
                 off), so it and the MLM head run on all S positions, as in Hugging Face's
                 BertForPreTraining: the same model FLOPs as the peers.
Each side (and each peer, with --peer_python) reports the model FLOPs of what it computes. The
step-time ratio peer / masked is the headline; peer / all positions compares the kernels and
framework alone; all positions / masked is what the masked gather saves.

All local devices take part (data parallel over a `data` mesh). No TensorFlow is imported.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from bert_jax.bench import peers, report
from bert_jax.cli.parser import command_parser, split_examples


def _args(argv):
    description, examples = split_examples(__doc__)
    p = command_parser("bert-jax bench step", description, examples)
    p.add_argument("--size", default="small", help="model size preset (tiny ... large, L-x_H-y)")
    p.add_argument("--batch", type=int, default=16, help="global batch (sequences per step)")
    p.add_argument("--seq", type=int, default=128, help="sequence length")
    p.add_argument("--predictions", type=int, default=20, help="masked positions per sequence")
    p.add_argument("--vocab", type=int, default=30522, help="vocabulary size")
    p.add_argument("--dtype", default="float32", help="compute dtype (float32, bfloat16)")
    p.add_argument("--attention", default="einsum", help="einsum | dot_product")
    p.add_argument("--accum", type=int, default=1, help="micro-batches per step")
    p.add_argument("--remat", action="store_true", help="recompute layer activations")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling")
    p.add_argument("--matmul", type=int, default=2048, help="side of the reference matmul")
    p.add_argument(
        "--masked_only",
        action="store_true",
        help="skip the all-positions side (its [B,S,V] logits need S/P times the head's memory)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object as the last line")
    peers.add_peer_args(p)
    return p.parse_args(argv)


def matmul_rate(n: int, dtype, repeats: int = 8) -> float:
    """FLOP/s of an n x n x n matmul on the first device: best of a few timed batches."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), jnp.float32).astype(dtype)
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        outs = [dot(a, b) for _ in range(repeats)]
        jax.block_until_ready(outs)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2.0 * n**3 / best


def _build(args):
    import jax
    import ml_collections

    from bert_jax import sharding
    from bert_jax.data import synthetic as synthetic_data
    from bert_jax.model.config import preset
    from bert_jax.tasks.pretraining import PretrainingTask
    from bert_jax.trainer import optim
    from bert_jax.trainer import state as train_state
    from bert_jax.trainer import step as train_step

    dropout = 0.0 if args.attention == "dot_product" else 0.1
    config = preset(
        args.size,
        vocab_size=args.vocab,
        dtype=args.dtype,
        attention=args.attention,
        attention_dropout=dropout,
        remat=args.remat,
    )
    mesh = sharding.make_mesh(
        ml_collections.ConfigDict(
            dict(data=-1, fsdp=1, tensor=1, dcn_data=-1, dcn_fsdp=1, dcn_tensor=1)
        )
    )
    sharding.check_batch(args.batch, args.accum, mesh)
    opt = ml_collections.ConfigDict(
        dict(name="bert_adamw", learning_rate=1e-4, b1=0.9, b2=0.999, eps=1e-6,
             weight_decay=0.01, clip_norm=1.0, schedule="linear", warmup_steps=10,
             decay_power=1.0, end_learning_rate=0.0, decay_fraction=0.1)
    )  # fmt: skip
    tx, schedule = optim.make_optimizer(opt, 1_000_000)
    task = PretrainingTask(config, args.seq, args.predictions)
    sharded = train_state.plan(train_state.init_fn(task, tx, 0), mesh)
    state = train_state.create(sharded)

    def jitted(side: PretrainingTask):
        return train_step.jit_train_step(
            train_step.make_train_step(
                side, tx, schedule, mesh, args.accum, param_shardings=sharded.shardings.params
            ),
            sharded.shardings,
            mesh,
        )

    # The same params tree either way: only where the last layer runs differs.
    every_position = PretrainingTask(everywhere(config), args.seq, args.predictions)
    steps = {"masked": jitted(task), "all_positions": jitted(every_position)}
    host = synthetic_data.global_batch(0, 0, args.batch, args.seq, args.predictions, args.vocab)
    batch_layout = sharding.batch_sharding(mesh)
    return config, state, steps, host, lambda batch: jax.device_put(batch, batch_layout)


def everywhere(config):
    """The all-positions side's model: the last layer at every position, as the peers run it."""
    return config.replace(gather_last_layer=False)


def all_positions_batch(batch: dict) -> dict:
    """The same batch with every position a prediction slot: positions 0..S-1, the label at
    each position the input token, weight 1 where `batch` masks it and 0 elsewhere, so the loss
    is the masked batch's loss while the MLM head runs on all S positions."""
    rows, length = batch["input_ids"].shape
    weights = np.zeros((rows, length), np.float32)
    # Unused slots of the masked batch point at position 0 ([CLS]) with weight 0.
    np.put_along_axis(weights, batch["mlm_positions"], batch["mlm_weights"], axis=1)
    labels = batch["input_ids"].copy()
    np.put_along_axis(labels, batch["mlm_positions"], batch["mlm_ids"], axis=1)
    labels = np.where(weights > 0, labels, batch["input_ids"]).astype(np.int32)
    positions = np.broadcast_to(np.arange(length, dtype=np.int32), (rows, length)).copy()
    return {**batch, "mlm_positions": positions, "mlm_ids": labels, "mlm_weights": weights}


def side_flops(config, batch: int, seq: int, predictions: int) -> dict[str, float]:
    """Model FLOPs of one step of each side: the MLM head on `predictions` masked positions,
    and on all `seq` positions (bert-jax's all-positions side and the Hugging Face peers)."""
    from bert_jax.trainer import flops

    return {
        "masked": flops.train_flops(config, batch, seq, predictions),
        "all_positions": flops.train_flops(everywhere(config), batch, seq, seq),
    }


def _time(step, state, batch, warmup: int, steps: int):
    """(compile + first step seconds, timed step seconds, state, last metrics)."""
    import jax

    start = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    for _ in range(warmup):
        state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    return compile_s, times, state, metrics


def _side(flop_count: float, compile_s: float, times: list[float], metrics, devices: int) -> dict:
    step_s = statistics.median(times)
    return {
        "step_s_median": step_s,
        "step_s_min": min(times),
        "compile_s": compile_s,
        "model_gflop_per_step": flop_count / 1e9,
        "model_gflops_per_s_per_device": flop_count / step_s / devices / 1e9,
        "loss": float(metrics["loss"]),
    }


def _side_row(name: str, step_s: float, flop_count: float, devices: int, matmul: float):
    """One side's row: its step time, the model FLOPs of what it computes, their rate (and, on
    one device, that rate as a share of the matmul rate measured in this process)."""
    rate = flop_count / step_s
    share = f", {100 * rate / matmul:.1f}% of matmul" if devices == 1 else ""
    return name, (
        f"{step_s:.3f} s/step, {flop_count / 1e9:,.1f} GFLOP/step, {rate / 1e9:,.1f} GFLOP/s{share}"
    )


def main(argv: list[str]) -> int:
    args = _args(argv)
    import jax
    import jax.numpy as jnp

    from bert_jax.trainer import flops

    config, state, steps, host, place = _build(args)
    devices = jax.local_device_count()
    count = side_flops(config, args.batch, args.seq, args.predictions)
    # The reference rate is measured before and after the timed steps and averaged, so a
    # change in machine load during the run affects both sides of the ratio alike.
    matmul_before = matmul_rate(args.matmul, jnp.dtype(args.dtype))
    compile_s, times, state, metrics = _time(
        steps["masked"], state, place(host), args.warmup, args.steps
    )
    masked = _side(count["masked"], compile_s, times, metrics, devices)
    all_positions = None
    if not args.masked_only:
        batch = place(all_positions_batch(host))
        timing = _time(steps["all_positions"], state, batch, args.warmup, args.steps)
        all_positions = _side(count["all_positions"], timing[0], timing[1], timing[3], devices)
    matmul = (matmul_before + matmul_rate(args.matmul, jnp.dtype(args.dtype))) / 2
    kind = jax.devices()[0].device_kind
    # MFU against the peak of the dtype the model computes in (fp32 runs: the fp32 peak).
    peak = flops.peak_flops(kind, args.dtype, jax.config.jax_default_matmul_precision)
    per_device = masked["model_gflops_per_s_per_device"] * 1e9

    figures = {
        "size": args.size,
        "batch": args.batch,
        "seq": args.seq,
        "predictions": args.predictions,
        "dtype": args.dtype,
        "attention": args.attention,
        "accum": args.accum,
        "devices": devices,
        "device_kind": kind,
        **masked,
        "sequences_per_s": args.batch / masked["step_s_median"],
        "tokens_per_s": args.batch * args.seq / masked["step_s_median"],
        "matmul_gflops_per_s": matmul / 1e9,
        "model_over_matmul": per_device / matmul,
        "mfu": per_device / peak if peak else None,
        "all_positions": all_positions,
    }
    rows = [
        ("model", f"{args.size} ({config.num_layers} x {config.hidden_size}), {args.dtype}"),
        ("batch x seq (P)", f"{args.batch} x {args.seq} ({args.predictions})"),
        ("devices", f"{devices} x {kind}"),
        ("compile + first step (s)", compile_s),
        ("sequences / s", figures["sequences_per_s"]),
        ("tokens / s", figures["tokens_per_s"]),
        (f"matmul {args.matmul}^3 GFLOP/s", figures["matmul_gflops_per_s"]),
        ("model / matmul rate", f"{100 * figures['model_over_matmul']:.1f}%"),
        (f"MFU ({args.dtype} peak)", f"{100 * figures['mfu']:.1f}%" if peak else "n/a (no peak)"),
        ("-- each side: model FLOPs of what it computes", ""),
        _side_row(
            f"bert-jax, MLM on {args.predictions} masked", masked["step_s_median"],
            count["masked"], devices, matmul,
        ),
    ]  # fmt: skip
    if all_positions:
        name = f"bert-jax, MLM on all {args.seq}"
        step_s = all_positions["step_s_median"]
        rows.append(_side_row(name, step_s, count["all_positions"], devices, matmul))
    # The peers run on the same model and batch with the MLM head on every position.
    peer_figures = peers.compare_step(args, config)
    for peer, theirs in peer_figures.get("peers", {}).items():
        theirs["model_gflop_per_step"] = count["all_positions"] / 1e9
        theirs["model_gflops_per_s"] = count["all_positions"] / theirs["s_per_step"] / 1e9
        name = f"{peer}, MLM on all {args.seq}"
        rows.append(_side_row(name, theirs["s_per_step"], count["all_positions"], 1, matmul))
    rows += _ratio_rows(figures, peer_figures)
    figures.update(peer_figures, peak_rss_mb=report.peak_rss_mb())
    rows.append(("peak RSS (MB)", figures["peak_rss_mb"]))
    if "peer_load_average_1m" in figures:
        rows.append(("load average before peers (1 min)", figures["peer_load_average_1m"]))
    report.emit("bench step: pretraining train step", rows, figures, args.json)
    return 0


def _ratio_rows(ours: dict, peer_figures: dict) -> list[tuple[str, str]]:
    """Step-time ratios (>1: the second side is faster), added to the peers' figures too."""
    masked_s = ours["step_s_median"]
    everywhere = ours["all_positions"]
    rows = [("-- step-time ratios (>1: bert-jax side faster)", "")]
    if everywhere:
        saved = everywhere["step_s_median"] / masked_s
        ours["masked_gather_speedup"] = saved
        rows.append(
            ("bert-jax all positions / masked", f"{saved:.2f}x (what the masked gather saves)")
        )
    for peer, theirs in peer_figures.get("peers", {}).items():
        theirs["speedup"] = theirs["s_per_step"] / masked_s
        rows.append((f"{peer} / bert-jax masked", f"{theirs['speedup']:.2f}x (headline)"))
        if everywhere:
            same = theirs["s_per_step"] / everywhere["step_s_median"]
            theirs["speedup_vs_all_positions"] = same
            rows.append((f"{peer} / bert-jax all positions", f"{same:.2f}x (same model FLOPs)"))
    return rows if len(rows) > 1 else []
