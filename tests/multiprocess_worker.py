"""One process of the multi-process training test (tests/test_multiprocess.py).

  python tests/multiprocess_worker.py OUT_DIR STEPS [COORDINATOR NUM_PROCESSES PROCESS_ID]

Trains the tiny model for STEPS steps on a data=2 x fsdp=2 x tensor=2 mesh over every device of
every process, feeding each process its own rows of the synthetic global batches through the
real host-to-global path, and writes the final params (gathered) and losses from process 0.
"""

from __future__ import annotations

import sys


def train(out_dir: str, steps: int) -> None:
    import flax.linen as nn
    import jax
    import ml_collections
    import numpy as np
    import optax
    from jax.experimental import multihost_utils

    from bert_jax import optim, partitioning, pretrain_data, synthetic_data, train_state, train_step
    from bert_jax.config import BertConfig
    from bert_jax.heads import BertForPreTraining

    config = BertConfig(
        vocab_size=64, hidden_size=32, num_layers=1, num_heads=4, intermediate_size=64
    )
    batch, seq, predictions = 16, 16, 4
    mesh = partitioning.make_mesh(
        ml_collections.ConfigDict(
            dict(data=2, fsdp=2, tensor=2, dcn_data=-1, dcn_fsdp=1, dcn_tensor=1)
        )
    )
    schedule = optax.constant_schedule(1e-2)
    tx = optim.bert_adamw(schedule, weight_decay=0.01)
    model = BertForPreTraining(config)
    sharded = train_state.plan(train_state.init_fn(model, tx, 0, seq, predictions), mesh)
    state = train_state.create(sharded)
    step = train_step.jit_train_step(
        train_step.make_train_step(model, tx, schedule, mesh, 1, 1.0, sharded.shardings.params),
        sharded.shardings,
        mesh,
    )
    stream = synthetic_data.SyntheticBatches(
        0, batch, seq, predictions, config.vocab_size, jax.process_index(), jax.process_count()
    )
    losses = []
    for _ in range(steps):
        state, metrics = step(state, pretrain_data.to_global(next(stream), mesh))
        losses.append(float(metrics["loss"]))
    params = multihost_utils.process_allgather(nn.unbox(state.params), tiled=True)
    if jax.process_index() == 0:
        flat = {
            jax.tree_util.keystr(path): np.asarray(value)
            for path, value in jax.tree_util.tree_leaves_with_path(params)
        }
        np.savez(f"{out_dir}/params.npz", **flat)
        np.save(f"{out_dir}/losses.npy", np.asarray(losses))


if __name__ == "__main__":
    out, steps = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3:
        from bert_jax import distributed

        assert distributed.initialize(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        import jax

        assert jax.process_count() == int(sys.argv[4]) and jax.local_device_count() == 4
        assert jax.device_count() == 8
    train(out, steps)
