"""`bert-jax bench checkpoint`: how long the training loop is blocked by one async save of a
full train state (params + AdamW moments: ~1.3 GB float32 for BERT-base), how long the write
takes to commit in the background, the write rate, and a restore's read rate; then how long the
input pipeline takes to resume at a saved data position, early and deep into a large shard
(`bert_jax.bench.data_resume`; --data_shard_mb=0 skips it).

  bert-jax bench checkpoint                       # BERT-base, 3 saves, under the system temp dir
  bert-jax bench checkpoint --size large --dir /mnt/disk --json

The saves go through `bert_jax.checkpoint.manager.Checkpointer`, exactly as training saves. The
first save also creates the Orbax manager and its threads, so it is reported apart from the rest.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time

from bert_jax.bench import report
from bert_jax.cli.parser import command_parser, split_examples


def _args(argv):
    description, examples = split_examples(__doc__)
    p = command_parser("bert-jax bench checkpoint", description, examples)
    p.add_argument("--size", default="base", help="model size preset (tiny ... large, L-x_H-y)")
    p.add_argument("--vocab", type=int, default=30522, help="vocabulary size")
    p.add_argument("--saves", type=int, default=3, help="saves timed (the first is reported alone)")
    p.add_argument("--dir", default=None, help="where to write (default: the system temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the written checkpoints")
    p.add_argument("--json", action="store_true", help="one JSON object as the last line")
    p.add_argument(
        "--data_shard_mb",
        type=float,
        default=200,
        help="size of the synthetic shard the data resume is timed on (0: skip that part)",
    )
    p.add_argument(
        "--data_positions",
        default="0.01,0.9",
        help="where in the shard to resume, as fractions (comma-separated)",
    )
    return p.parse_args(argv)


def _state(size: str, vocab: int):
    """BERT params (real init) and AdamW state, on the first device."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    from bert_jax.model.config import preset
    from bert_jax.model.heads import BertForPreTraining
    from bert_jax.trainer.state import TrainState

    model = BertForPreTraining(preset(size, vocab_size=vocab))
    tx = optax.adamw(1e-4)

    @jax.jit
    def init():
        ids = jnp.zeros((1, 8), jnp.int32)
        params = nn.unbox(model.init(jax.random.PRNGKey(0), ids)["params"])
        # Moments that are not all zeros, as after real steps (zeros would compress on disk).
        mu = jax.tree.map(lambda p: p * 1e-3, params)
        nu = jax.tree.map(lambda p: p * p, params)
        adam, *rest = tx.init(params)
        opt_state = (adam._replace(count=jnp.ones((), jnp.int32), mu=mu, nu=nu), *rest)
        return TrainState(
            step=jnp.ones((), jnp.int32),
            params=params,
            opt_state=opt_state,
            rng=jax.random.key_data(jax.random.PRNGKey(1)),
        )

    return jax.block_until_ready(init())


def main(argv: list[str]) -> int:
    args = _args(argv)
    import jax

    from bert_jax.checkpoint import (
        manager as checkpointing,
    )
    from bert_jax.checkpoint import (
        metadata as checkpoint_metadata,
    )
    from bert_jax.checkpoint import (
        restore as checkpoint_restore,
    )
    from bert_jax.errors import UserError

    if args.saves < 1:
        raise UserError(f"--saves must be at least 1, got {args.saves}")
    state = _state(args.size, args.vocab)
    state_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
    params = sum(x.size for x in jax.tree.leaves(state.params))
    workdir = tempfile.mkdtemp(prefix="bert-jax-bench-checkpoint-", dir=args.dir)
    options = {"save_every_steps": 0, "keep_last": 0, "async_save": True}
    blocked, committed, written = [], [], []
    try:
        ckpt = checkpointing.Checkpointer(workdir, options, {"model": {}, "scan_layers": False})
        for step in range(1, args.saves + 1):
            start = time.perf_counter()
            ckpt.save(step, state, {"position": step}, force=True)
            blocked.append(time.perf_counter() - start)
            ckpt.wait()
            committed.append(time.perf_counter() - start)
            written.append(checkpoint_metadata.size_bytes(ckpt.directory / str(step)))
        ckpt.close()
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state
        )
        del state
        start = time.perf_counter()
        restored, _ = checkpoint_restore.restore_state(ckpt.directory / str(args.saves), abstract)
        jax.block_until_ready(restored)
        restore_s = time.perf_counter() - start
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    steady = slice(1, None) if args.saves > 1 else slice(0, None)
    blocked_s = statistics.median(blocked[steady])
    commit_s = statistics.median(committed[steady])
    mb = written[-1] / 1e6
    figures = {
        "size": args.size,
        "device": jax.devices()[0].device_kind,
        "params_millions": params / 1e6,
        "state_mb": state_bytes / 1e6,
        "written_mb": mb,
        "first_save_blocked_s": blocked[0],
        "first_save_commit_s": committed[0],
        "save_blocked_s": blocked_s,
        "save_commit_s": commit_s,
        "write_mb_per_s": mb / commit_s,
        "restore_s": restore_s,
        "read_mb_per_s": mb / restore_s,
        "saves": args.saves,
        "peak_rss_mb": report.peak_rss_mb(),
        "directory": workdir if args.keep else None,
    }
    rows = [
        ("model", f"bert-{args.size}: {params / 1e6:.1f}M params, on {figures['device']}"),
        ("train state (params + AdamW)", f"{state_bytes / 1e6:,.0f} MB"),
        ("written per checkpoint", f"{mb:,.0f} MB"),
        ("first save: loop blocked", f"{blocked[0]:.3f} s (creates the manager)"),
        ("save: loop blocked (median)", f"{blocked_s:.3f} s"),
        ("save: until committed (median)", f"{commit_s:.2f} s"),
        ("write rate", f"{mb / commit_s:,.0f} MB/s"),
        ("restore (read + place)", f"{restore_s:.2f} s, {mb / restore_s:,.0f} MB/s"),
        ("peak RSS", f"{report.peak_rss_mb():,.0f} MB"),
    ]
    if args.data_shard_mb > 0:
        from bert_jax.bench.data_resume import resume_times

        fractions = [float(f) for f in args.data_positions.split(",") if f.strip()]
        data_rows, data_figures = resume_times(args.data_shard_mb, fractions)
        rows, figures = rows + data_rows, {**figures, **data_figures}
    report.emit("bert-jax bench checkpoint", rows, figures, args.json)
    return 0
