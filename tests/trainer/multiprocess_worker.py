"""One process of the multi-process training tests (tests/trainer/test_multiprocess.py).

  python tests/trainer/multiprocess_worker.py OUT_DIR STEPS LAYOUT \
      [COORDINATOR NUM_PROCESSES PROCESS_ID]

Trains the tiny model for STEPS steps on a mesh over every device of every process, feeding each
process the rows its devices hold of the synthetic global batches (`pretrain_data.open_data` with
this process's `HostFeed`, then `sharding.to_global_batch`), and writes the final params
(gathered) and losses from process 0. LAYOUT is a key of `LAYOUTS`: how the 8 devices (those of
process 0, then those of process 1) are laid on the (data, fsdp, tensor) mesh.
"""

from __future__ import annotations

import sys

LAYOUTS = {
    # data=2 x fsdp=2 x tensor=2 in device order: each process holds two whole batch shards.
    "whole": ((2, 2, 2), (0, 1, 2, 3, 4, 5, 6, 7)),
    # data=2 x tensor=4, each data row on two devices of each process: every batch shard lies on
    # both processes (as with tensor=8 on hosts of 4 chips).
    "spanning": ((2, 1, 4), (0, 1, 4, 5, 2, 3, 6, 7)),
}


def mesh(layout: str):
    import jax
    import numpy as np
    from jax.sharding import Mesh

    from bert_jax import sharding

    shape, order = LAYOUTS[layout]
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    grid = np.empty(len(order), dtype=object)
    grid[:] = [devices[i] for i in order]
    return Mesh(grid.reshape(shape), sharding.MESH_AXES)


def train(out_dir: str, steps: int, layout: str) -> None:
    import flax.linen as nn
    import jax
    import numpy as np
    import optax
    from jax.experimental import multihost_utils

    from bert_jax import sharding
    from bert_jax.model.config import BertConfig
    from bert_jax.tasks import pretraining_data as pretrain_data
    from bert_jax.tasks.pretraining import PretrainingTask
    from bert_jax.trainer import optim
    from bert_jax.trainer import state as train_state
    from bert_jax.trainer import step as train_step
    from configs import pretrain

    config = BertConfig(
        vocab_size=64, hidden_size=32, num_layers=1, num_heads=4, intermediate_size=64
    )
    run = pretrain.get_config("tiny")
    run.data.synthetic, run.model.vocab_size = True, config.vocab_size
    run.data.max_seq_length, run.data.max_predictions_per_seq = 16, 4
    run.train.batch_size = 16
    seq, predictions = run.data.max_seq_length, run.data.max_predictions_per_seq
    grid = mesh(layout)
    feed = sharding.host_feed(grid)
    schedule = optax.constant_schedule(1e-2)
    tx = optim.bert_adamw(schedule, weight_decay=0.01)
    task = PretrainingTask(config, seq, predictions)
    sharded = train_state.plan(train_state.init_fn(task, tx, 0), grid)
    state = train_state.create(sharded)
    step = train_step.jit_train_step(
        train_step.make_train_step(task, tx, schedule, grid, 1, sharded.shardings.params),
        sharded.shardings,
        grid,
    )
    stream = pretrain_data.open_data(run, run.train.batch_size, feed).train(None)
    losses = []
    for _ in range(steps):
        state, metrics = step(state, sharding.to_global_batch(next(stream), feed))
        losses.append(float(metrics["loss"]))
    params = multihost_utils.process_allgather(nn.unbox(state.params), tiled=True)
    if jax.process_index() == 0:
        flat = {
            jax.tree_util.keystr(path): np.asarray(value)
            for path, value in jax.tree_util.tree_leaves_with_path(params)
        }
        np.savez(f"{out_dir}/params.npz", **flat)
        np.save(f"{out_dir}/losses.npy", np.asarray(losses))
        np.save(f"{out_dir}/groups.npy", np.asarray([feed.group, feed.groups]))


if __name__ == "__main__":
    out, steps, layout = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if len(sys.argv) > 4:
        from bert_jax import distributed

        assert distributed.initialize(sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
        import jax

        assert jax.process_count() == int(sys.argv[5]) and jax.local_device_count() == 4
        assert jax.device_count() == 8
    train(out, steps, layout)
