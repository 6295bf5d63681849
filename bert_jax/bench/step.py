"""`bert-jax bench step`: time the real pretraining step (forward, backward, optimizer update,
dropout on) and report model FLOP/s against the same process's measured matmul rate, and MFU
against the chip's peak where it is known.

  bert-jax bench step                                      # bert-small, 16 x 128, P=20, fp32
  bert-jax bench step --size base --batch 256 --dtype bfloat16 --matmul 8192 --json  # GPU/TPU

All local devices take part (data parallel over a `data` mesh). No TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bert_jax.bench import peers, report


def _args(argv):
    p = argparse.ArgumentParser(prog="bert-jax bench step", description=__doc__.split("\n")[0])
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

    from bert_jax import optim, partitioning, synthetic_data, train_state, train_step
    from bert_jax.config import preset
    from bert_jax.heads import BertForPreTraining

    dropout = 0.0 if args.attention == "dot_product" else 0.1
    config = preset(
        args.size,
        vocab_size=args.vocab,
        dtype=args.dtype,
        attention=args.attention,
        attention_dropout=dropout,
        remat=args.remat,
    )
    mesh = partitioning.make_mesh(
        ml_collections.ConfigDict(
            dict(data=-1, fsdp=1, tensor=1, dcn_data=-1, dcn_fsdp=1, dcn_tensor=1)
        )
    )
    partitioning.check_batch(args.batch, args.accum, mesh, jax.process_count())
    opt = ml_collections.ConfigDict(
        dict(name="bert_adamw", learning_rate=1e-4, b1=0.9, b2=0.999, eps=1e-6,
             weight_decay=0.01, clip_norm=1.0, schedule="linear", warmup_steps=10,
             decay_power=1.0, end_learning_rate=0.0, decay_fraction=0.1)
    )  # fmt: skip
    tx, schedule = optim.make_optimizer(opt, 1_000_000)
    model = BertForPreTraining(config)
    sharded = train_state.plan(train_state.init_fn(model, tx, 0, args.seq, args.predictions), mesh)
    state = train_state.create(sharded)
    step = train_step.jit_train_step(
        train_step.make_train_step(
            model, tx, schedule, mesh, args.accum, param_shardings=sharded.shardings.params
        ),
        sharded.shardings,
        mesh,
    )
    host = synthetic_data.global_batch(0, 0, args.batch, args.seq, args.predictions, args.vocab)
    batch = jax.device_put(host, partitioning.batch_sharding(mesh))
    return config, state, step, batch


def main(argv: list[str]) -> int:
    args = _args(argv)
    import jax
    import jax.numpy as jnp

    from bert_jax import flops

    config, state, step, batch = _build(args)
    # The reference rate is measured before and after the timed steps and averaged, so a
    # change in machine load during the run affects both sides of the ratio alike.
    matmul_before = matmul_rate(args.matmul, jnp.dtype(args.dtype))
    start = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    for _ in range(args.warmup):
        state, metrics = step(state, batch)
    jax.block_until_ready(metrics)

    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)

    devices = jax.local_device_count()
    model_flops = flops.train_flops(config, args.batch, args.seq, args.predictions) / step_s
    per_device = model_flops / devices
    matmul = (matmul_before + matmul_rate(args.matmul, jnp.dtype(args.dtype))) / 2
    kind = jax.devices()[0].device_kind
    peak = flops.peak_flops(kind)

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
        "compile_s": compile_s,
        "step_s_median": step_s,
        "step_s_min": min(times),
        "sequences_per_s": args.batch / step_s,
        "tokens_per_s": args.batch * args.seq / step_s,
        "model_gflops_per_s_per_device": per_device / 1e9,
        "matmul_gflops_per_s": matmul / 1e9,
        "model_over_matmul": per_device / matmul,
        "mfu": per_device / peak if peak else None,
        "loss": float(metrics["loss"]),
        "peak_rss_mb": report.peak_rss_mb(),
    }
    rows = [
        ("model", f"{args.size} ({config.num_layers} x {config.hidden_size}), {args.dtype}"),
        ("batch x seq (P)", f"{args.batch} x {args.seq} ({args.predictions})"),
        ("devices", f"{devices} x {kind}"),
        ("compile + first step (s)", compile_s),
        ("step time, median (ms)", 1e3 * step_s),
        ("sequences / s", figures["sequences_per_s"]),
        ("tokens / s", figures["tokens_per_s"]),
        ("model GFLOP/s per device", figures["model_gflops_per_s_per_device"]),
        (f"matmul {args.matmul}^3 GFLOP/s", figures["matmul_gflops_per_s"]),
        ("model / matmul rate", f"{100 * figures['model_over_matmul']:.1f}%"),
        ("MFU (bf16 peak)", f"{100 * figures['mfu']:.1f}%" if peak else "n/a (unknown peak)"),
        ("peak RSS (MB)", figures["peak_rss_mb"]),
    ]
    peer_rows, peer_figures = peers.compare_step(args, config, step_s)
    rows, figures = rows + peer_rows, {**figures, **peer_figures}
    report.emit("bench step: pretraining train step", rows, figures, args.json)
    return 0
