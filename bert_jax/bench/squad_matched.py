"""One SQuAD v1.1 fine-tuning run made twice in lockstep, by transformers (`peers/hf_squad_ref.py`:
PyTorch, torch AdamW) and by bert-jax's trainer step (its SQuAD task, loss, optax AdamW and
schedule), with every random draw shared: the reference's training windows and batch order, one
initial QA head, dropout 0 on both sides, and the [PAD] embedding row trained on both sides (as
BERT trains it; transformers' `padding_idx` would freeze it). Both start from the same checkpoint,
so any gap left at the end comes from arithmetic (float32 rounding in another order), not chance.

  python -m bert_jax.bench.squad_matched MODEL_DIR SQUAD_JSON SEED [--lr 1.5e-4] [--epochs 2]
      [--train_articles 0:8] [--eval_articles -10:] [--batch 32] [--max_len 256]
      [--stride 128] [--max_query 64] [--out DIR]

The options are hf_squad_ref's. bert-jax's optimizer is the SQuAD config's section set to the
reference's recipe (`adamw`, eps 1e-8, warmup then linear decay from the warmup's end, i.e. the
`wsd` schedule), and every step checks that both sides used the same rate. Each side is then
scored by its own evaluation (the reference's windows and decoding; bert-jax's windows, decoder
and official scoring). Prints the two losses every `LOG_EVERY` steps and one JSON object on the
last line; with --out, writes DIR/losses.json (both sides' loss at every step).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from bert_jax.bench import squad_cross_eval as cross
from bert_jax.bench.peers import hf_squad_ref as ref

LOG_EVERY = 10
RATE_RTOL = 1e-5  # float32 schedule arithmetic against torch's float64


def slice_text(articles: slice) -> str:
    """slice(-10, None) -> '-10:' (the config's article slice)."""
    return ":".join("" if v is None else str(v) for v in (articles.start, articles.stop))


def reference_side(args):
    """(model in train mode without dropout, tokenizer, train windows, starts, ends)."""
    import torch

    torch.manual_seed(args.seed)  # the QA head's initial draw, shared with bert-jax below
    torch.set_num_threads(2)
    tokenizer, model = ref.load_model(args.model_dir, dropout=0.0)
    questions = ref.load_questions(args.squad_json, args.train_articles)
    windows = ref.make_windows(tokenizer, questions, args.max_len, args.stride, args.max_query)
    starts, ends = ref.train_labels(windows, questions, tokenizer.cls_token_id)
    # transformers never trains the [PAD] row (`padding_idx`); BERT and bert-jax do (padded
    # positions enter the start/end softmax, so the row has a gradient). Lifted here so the two
    # runs differ in arithmetic only; `tests/tasks/test_squad_step_parity.py` pins the difference.
    model.bert.embeddings.word_embeddings.padding_idx = None
    return model.train(), tokenizer, windows, starts, ends


def as_features(windows, starts, ends):
    """The reference's windows and labels as bert-jax's `Features` (one row per window)."""
    from bert_jax.tasks.text_features import Features

    return Features(
        input_ids=[np.asarray(ids, np.int32) for ids in windows["input_ids"]],
        segment_ids=[np.asarray(ids, np.int32) for ids in windows["token_type_ids"]],
        labels=np.stack([starts, ends], axis=1).astype(np.int32),
        indices=np.asarray(windows["overflow_to_sample_mapping"], np.int64),
        truncated=0,
    )


def bert_jax_side(args, head: dict, steps: int):
    """(task, jitted train step, initial state, schedule): the encoder of MODEL_DIR with the
    reference's initial QA head, the reference's optimizer recipe in the SQuAD config."""
    import jax
    import jax.numpy as jnp

    from bert_jax import sharding
    from bert_jax.trainer import optim
    from bert_jax.trainer import step as train_step
    from bert_jax.trainer.state import TrainState

    config, task = cross.squad_task(
        args.model_dir, args.squad_json, slice_text(args.eval_articles), args, dropout=0.0
    )
    assert (task.model_config.hidden_dropout, task.model_config.attention_dropout) == (0, 0)
    o = config.optimizer
    warmup = int(ref.WARMUP_FRACTION * steps)
    o.name, o.eps, o.learning_rate = "adamw", 1e-8, args.lr
    o.schedule, o.warmup_fraction, o.decay_fraction = "wsd", warmup / steps, 1 - warmup / steps
    assert (o.b1, o.b2, o.weight_decay, o.clip_norm) == (
        0.9,
        0.999,
        ref.WEIGHT_DECAY,
        ref.CLIP_NORM,
    ), "the SQuAD config's optimizer no longer matches the reference's constants"
    tx, schedule = optim.make_optimizer(o, steps)
    mesh = sharding.make_mesh(config.mesh, jax.devices()[:1])
    params = cross.params_with_head(task, args.model_dir, head)
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        rng=jax.random.PRNGKey(args.seed),  # unused: no dropout
    )
    step = jax.jit(train_step.make_train_step(task, tx, schedule, mesh))
    return task, step, state, schedule


def main(argv: list[str]) -> int:
    from bert_jax.tasks.sentence_batches import make_batch

    args = ref.parse_args(argv)
    model, tokenizer, windows, starts, ends = reference_side(args)
    count = len(windows["input_ids"])
    steps = ref.steps_for(count, args.batch, args.epochs)
    opt, schedule = ref.make_optimizer(model, args.lr, steps)
    head = {n: p.detach().numpy() for n, p in model.named_parameters() if "qa_outputs" in n}
    task, our_step, state, our_schedule = bert_jax_side(args, head, steps)
    features = as_features(windows, starts, ends)

    losses = {"transformers": [], "bert_jax": []}
    t0 = time.time()
    for i, rows in enumerate(ref.batch_rows(count, args.batch, steps, args.seed)):
        theirs, rate = ref.train_step(model, opt, schedule, windows, rows, starts, ends)
        # Padded to the batch's longest window, as the reference pads: padded positions enter
        # the start/end softmax on both sides, so the same padding gives the same loss.
        batch = make_batch(features, np.asarray(rows), args.batch, 0, args.max_len)
        state, metrics = our_step(state, batch)
        ours = float(metrics["loss"])
        if not np.isclose(float(our_schedule(i)), rate, rtol=RATE_RTOL, atol=1e-12):
            sys.exit(f"squad_matched: step {i}: rate {float(our_schedule(i))} against {rate}")
        losses["transformers"].append(theirs)
        losses["bert_jax"].append(ours)
        if (i + 1) % LOG_EVERY == 0 or i + 1 == steps:
            print(
                f"step {i + 1}/{steps} rate {rate:.3g} loss transformers {theirs:.5f} "
                f"bert-jax {ours:.5f} ({time.time() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )

    eval_questions = ref.load_questions(args.squad_json, args.eval_articles)
    eval_windows = ref.make_windows(
        tokenizer, eval_questions, args.max_len, args.stride, args.max_query
    )
    answers = ref.best_answers(eval_questions, eval_windows, ref.window_logits(model, eval_windows))
    their_scores = ref.squad_scores(eval_questions, answers)
    _, our_metrics = cross.task_answers(task, state.params)
    gaps = np.abs(np.subtract(losses["transformers"], losses["bert_jax"]))
    tail = max(1, steps // 4)  # the last quarter of the run
    line = {
        "seed": args.seed,
        "lr": args.lr,
        "steps": steps,
        "train_windows": count,
        "eval_questions": len(eval_questions),
        "max_loss_gap": round(float(gaps.max()), 5),
        "step_of_max_gap": int(gaps.argmax()),
        "last_quarter_mean_loss": {
            k: round(float(np.mean(v[-tail:])), 4) for k, v in losses.items()
        },
        "transformers": {k: round(v, 2) for k, v in their_scores.items()},
        "bert_jax": {k: round(our_metrics[k], 2) for k in ("exact_match", "f1")},
        "wall_s": round(time.time() - t0),
    }
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "losses.json"), "w", encoding="utf-8") as f:
            json.dump(losses, f)
    for name, scores in (("transformers", their_scores), ("bert-jax", our_metrics)):
        print(f"{name:<13} EM {scores['exact_match']:.2f} F1 {scores['f1']:.2f}")
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
