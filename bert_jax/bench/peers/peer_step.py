"""Peer train step on CPU: Hugging Face transformers 4.x `BertForPreTraining` (PyTorch, eager)
and `FlaxBertForPreTraining` (jit), the model shape and batch of `bert-jax bench step`, AdamW
(lr 1e-4, weight decay 0.01), dropout on, MLM + NSP loss.

Prints one line per peer: seconds per step (median of STEPS timed steps after 2 warm-up steps)
and the model FLOP/s of the work the peer does. Both peers run the MLM head (transform and tied
vocab projection) on EVERY position, as `BertForPreTraining` does (labels -100 mark the
positions that do not count), so their model FLOPs have S, not the P masked positions, in the
vocab term. FLOPs are counted as `bert_jax/trainer/flops.py` counts them (2 per multiply-add,
backward = 2 x forward; tests/bench/test_peer_scripts.py checks that the two counts agree).

Standalone: runs in its own virtual environment, without bert-jax installed:
  pip install torch==2.13.0 "transformers>=4.45,<5" "jax[cpu]" flax optax
  python peer_step.py [layers hidden heads mlp batch seq]   (default: bert-small, 16 x 128)
Environment: STEPS (timed steps, default 8), PEERS (default "torch,flax").
"""

import os
import statistics
import sys
import time

VOCAB, PREDICTIONS = 30522, 20  # vocab size; masked positions per sequence (labels != -100)
DEFAULT_SHAPE = (4, 512, 8, 2048, 16, 128)  # layers hidden heads mlp batch seq: bert-small
WARMUP = 2


def model_flops(layers, hidden, mlp, vocab, batch, seq, mlm_positions):
    """Train-step FLOPs with the MLM head on `mlm_positions` positions per sequence: encoder
    matmuls and attention per token, MLM transform + vocab projection per position, pooler +
    NSP per sequence; forward x 3 for forward + backward."""
    per_token = layers * (2 * (4 * hidden * hidden + 2 * hidden * mlp) + 4 * seq * hidden)
    mlm = 2 * (hidden * hidden + vocab * hidden) * mlm_positions
    pooler = 2 * (hidden * hidden + 2 * hidden)
    return 3.0 * batch * (seq * per_token + mlm + pooler)


def make_batch(batch, seq):
    """Random ids, PREDICTIONS labelled positions per row (-100 elsewhere), NSP labels."""
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(1000, VOCAB, size=(batch, seq))
    labels = np.full((batch, seq), -100)
    for row in range(batch):
        picked = rng.choice(seq, size=min(PREDICTIONS, seq), replace=False)
        labels[row, picked] = ids[row, picked]
    return ids, labels, rng.integers(0, 2, size=(batch,))


def time_steps(run_step, steps):
    """Seconds of each of `steps` calls after WARMUP untimed ones (the first compiles)."""
    times = []
    for i in range(steps + WARMUP):
        start = time.perf_counter()
        run_step()
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
    return times


def report(name, times, flops):
    median = statistics.median(times)
    print(
        f"{name}: {median:.3f} s/step  ({flops / median / 1e9:.1f} model GFLOP/s)  "
        f"min {min(times):.3f} max {max(times):.3f}",
        flush=True,
    )


def bert_config(layers, hidden, heads, mlp):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=mlp,
        max_position_embeddings=512,
    )


def torch_step(config, ids, labels, nsp):
    import torch
    from transformers import BertForPreTraining

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    model = BertForPreTraining(config)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    t_ids, t_labels, t_nsp = torch.tensor(ids), torch.tensor(labels), torch.tensor(nsp)

    def run():
        out = model(input_ids=t_ids, labels=t_labels, next_sentence_label=t_nsp)
        out.loss.backward()
        opt.step()
        opt.zero_grad()

    return run


def flax_step(config, ids, labels, nsp):
    import jax
    import jax.numpy as jnp
    import optax
    from transformers import FlaxBertForPreTraining

    model = FlaxBertForPreTraining(config, seed=0)
    tx = optax.adamw(1e-4, weight_decay=0.01)
    j_ids, j_labels, j_nsp = jnp.asarray(ids), jnp.asarray(labels), jnp.asarray(nsp)

    def loss_fn(params, dropout_rng):
        out = model(j_ids, params=params, train=True, dropout_rng=dropout_rng)
        log_p = jax.nn.log_softmax(out.prediction_logits)
        mask = j_labels >= 0
        picked = jnp.take_along_axis(log_p, jnp.maximum(j_labels, 0)[..., None], -1)[..., 0]
        mlm = -jnp.sum(picked * mask) / mask.sum()
        nsp_log_p = jax.nn.log_softmax(out.seq_relationship_logits)
        return mlm - jnp.mean(jnp.take_along_axis(nsp_log_p, j_nsp[:, None], -1))

    @jax.jit
    def step(params, opt_state, count):
        grads = jax.grad(loss_fn)(params, jax.random.fold_in(jax.random.PRNGKey(0), count))
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, count + 1

    state = [model.params, tx.init(model.params), jnp.zeros((), jnp.int32)]

    def run():
        state[:] = step(*state)
        jax.block_until_ready(state)

    return run


PEERS = {
    "torch": ("hf-torch BertForPreTraining", torch_step),
    "flax": ("hf-flax FlaxBertForPreTraining (jit)", flax_step),
}


def main(argv):
    layers, hidden, heads, mlp, batch, seq = (int(x) for x in (argv or DEFAULT_SHAPE))
    steps = int(os.environ.get("STEPS", 8))
    flops = model_flops(layers, hidden, mlp, VOCAB, batch, seq, mlm_positions=seq)
    config = bert_config(layers, hidden, heads, mlp)
    ids, labels, nsp = make_batch(batch, seq)
    for key in os.environ.get("PEERS", "torch,flax").split(","):
        name, build = PEERS[key]
        report(name, time_steps(build(config, ids, labels, nsp), steps), flops)


if __name__ == "__main__":
    main(sys.argv[1:7])
