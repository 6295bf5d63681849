"""One fine-tuned transformers `BertForQuestionAnswering` directory, scored twice on the same
SQuAD v1.1 dev questions: by the reference script's own evaluation (`peers/hf_squad_ref.py`:
transformers' windows, PyTorch logits, `run_qa` post-processing) and by bert-jax's (its windows,
its encoder in JAX with the same weights, its decoder and the official scoring), so a gap
between the two fine-tuning runs can be told apart from a gap in evaluation.

  python -m bert_jax.bench.squad_cross_eval MODEL_DIR SQUAD_JSON [--articles -10:]
      [--max_len 256] [--stride 128] [--max_query 64]

Needs torch and transformers beside bert-jax (the `test` extra has both); MODEL_DIR is what
`hf_squad_ref.py --save_model` writes. Prints both scores and the number of questions whose
answers differ (the two sides cut multi-window contexts differently: transformers' `stride` is
the overlap of windows, bert-jax's `doc_stride` the distance between their starts), with one
JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from bert_jax.bench.peers import hf_squad_ref as ref

EVAL_BATCH = 64


def qa_head_from_torch(state: dict) -> dict:
    """transformers' `qa_outputs` ([out, in] weight) as bert-jax's `qa_outputs` ([in, out])."""
    return {
        "kernel": np.ascontiguousarray(np.asarray(state["qa_outputs.weight"]).T),
        "bias": np.asarray(state["qa_outputs.bias"]),
    }


def reference_answers(model_dir: str, squad_json: str, args) -> tuple[dict, dict, dict]:
    """(answers, scores, QA head weights) of hf_squad_ref's evaluation of the model."""
    import torch
    from transformers import BertForQuestionAnswering, BertTokenizerFast

    torch.set_num_threads(2)
    tokenizer = BertTokenizerFast.from_pretrained(model_dir)
    model = BertForQuestionAnswering.from_pretrained(model_dir).eval()
    questions = ref.load_questions(squad_json, ref.parse_slice(args.articles))
    windows = ref.make_windows(tokenizer, questions, args.max_len, args.stride, args.max_query)
    answers = ref.best_answers(questions, windows, ref.window_logits(model, windows))
    head = {n: p.detach().numpy() for n, p in model.named_parameters() if "qa_outputs" in n}
    return answers, ref.squad_scores(questions, answers), head


def squad_task(model_dir: str, squad_json: str, articles: str, args, dropout=None):
    """bert-jax's SQuAD v1.1 task whose dev split is the file's `articles` (a slice as text),
    windowed by `args` (max_len, stride, max_query), its architecture from `model_dir`
    (with `dropout`, when given, for both kinds of dropout)."""
    from bert_jax.tasks import squad
    from configs import squad as squad_config

    config = squad_config.get_config("v1.1")
    config.init_from = model_dir
    config.data.dev_file = squad_json
    config.data.dev_articles = articles
    config.data.max_seq_length = args.max_len
    config.data.doc_stride = args.stride
    config.data.max_query_length = args.max_query
    if dropout is not None:
        config.model.hidden_dropout = config.model.attention_dropout = dropout
    warn = lambda line: print(line, file=sys.stderr)  # noqa: E731
    return config, squad.build(config, None, None, EVAL_BATCH, warn)


def params_with_head(task, model_dir: str, head: dict) -> dict:
    """The task's params: the encoder of `model_dir` through `init_from`, the QA head (which
    `init_from` leaves to fine-tuning) copied from transformers' `head`."""
    import flax.linen as nn
    import jax

    from bert_jax.checkpoint import init_from

    target = nn.unbox(jax.eval_shape(task.init_params, jax.random.key(0), task.example_batch()))
    params, _ = init_from.load_encoder(model_dir, target, encoder_only=True)
    return {"bert": params["bert"], "qa_outputs": qa_head_from_torch(head)}


def task_answers(task, params) -> tuple[dict, dict]:
    """(answers, metrics) of bert-jax's evaluation of `params` on the task's dev split."""
    import jax

    @jax.jit
    def outputs(params, batch):
        logits = task.model.apply({"params": params}, **task.model_inputs(batch))
        return task.eval_outputs(logits, batch)

    split = [jax.tree.map(np.asarray, outputs(params, b)) for b in task.data.evaluation()["dev"]]
    metrics = task.evaluate("dev", split)
    return task.predictions["dev"].answers, metrics


def bert_jax_answers(model_dir: str, squad_json: str, args, head: dict) -> tuple[dict, dict]:
    """(answers, metrics) of bert-jax's SQuAD evaluation of the same weights."""
    _, task = squad_task(model_dir, squad_json, args.articles, args)
    return task_answers(task, params_with_head(task, model_dir, head))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", help="a fine-tuned transformers BertForQuestionAnswering folder")
    p.add_argument("squad_json", help="a SQuAD v1.1 JSON file (e.g. dev-v1.1.json)")
    p.add_argument("--articles", default="-10:", help="a slice of the file's articles")
    p.add_argument("--max_len", type=int, default=256)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--max_query", type=int, default=64)
    # argparse reads a value like "-10:" as an option: bind it to its flag first.
    argv = list(argv)
    for i in range(len(argv) - 2, -1, -1):
        if argv[i] == "--articles":
            argv[i : i + 2] = [f"--articles={argv[i + 1]}"]
    args = p.parse_args(argv)
    theirs, their_scores, head = reference_answers(args.model_dir, args.squad_json, args)
    ours, our_metrics = bert_jax_answers(args.model_dir, args.squad_json, args, head)
    different = sum(ours.get(qid) != text for qid, text in theirs.items())
    line = {
        "questions": len(theirs),
        "transformers": {k: round(v, 2) for k, v in their_scores.items()},
        "bert_jax": {k: round(our_metrics[k], 2) for k in ("exact_match", "f1")},
        "different_answers": different,
    }
    for name, scores in (("transformers'", their_scores), ("bert-jax's", our_metrics)):
        print(f"{name + ' evaluation:':<26} EM {scores['exact_match']:.2f} F1 {scores['f1']:.2f}")
    print(f"questions answered differently: {different} of {len(theirs)}")
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
