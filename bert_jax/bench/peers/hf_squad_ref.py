"""Reference SQuAD v1.1 fine-tuning with Hugging Face transformers 4.x (PyTorch, CPU, 2 threads):
`BertForQuestionAnswering` trained on some articles of a SQuAD JSON file and scored on others,
as the side-by-side anchor for `bert-jax finetune --config=configs/squad.py:v1.1`.

Preprocessing and decoding are those of transformers' `examples/pytorch/question-answering`
(`run_qa.py` and `utils_qa.py`): question and context tokenised together with
truncation="only_second", overlapping windows (`stride` tokens shared) and offset mappings;
a window's training label is the token span of the question's first answer, or [CLS] (0, 0) when
the answer is not wholly inside it. Decoding takes the `N_BEST` best starts and ends of every
window of a question, keeps spans of context tokens at most `MAX_ANSWER` tokens long, and answers
with the best-scoring span's original context text (cut by character offsets).
Training: AdamW (weight decay 0.01 except LayerNorm weights and biases), warmup over the first 10%
of the steps then linear decay, gradients clipped to global norm 1.0 (the Trainer's default),
windows shuffled every epoch by the seed, each batch padded to its longest row.
Questions longer than `--max_query` tokens are cut to that many, as the original BERT recipe does.
EM and F1 are the official SQuAD v1.1 evaluation script's definitions, written out here.

Standalone: runs in its own virtual environment, without bert-jax installed:
  pip install torch==2.13.0 "transformers<5" numpy
  python hf_squad_ref.py MODEL_DIR SQUAD_JSON SEED [--train_articles 0:8] [--eval_articles -10:]
      [--epochs 2] [--lr 5e-5] [--batch 32] [--max_len 256] [--stride 128] [--max_query 64]
      [--dropout P] [--out DIR] [--save_model DIR]
Prints one JSON line; with --out, also writes DIR/predictions.json (question id -> answer text,
the format the official evaluation script reads); with --save_model, the fine-tuned model and
its tokenizer (a Hugging Face directory, so the same weights can be scored by other decoders).
"""

import argparse
import collections
import json
import math
import os
import random
import re
import string
import sys
import time

N_BEST = 20  # best start and end positions tried per window
MAX_ANSWER = 30  # longest answer, in tokens
WARMUP_FRACTION, WEIGHT_DECAY, CLIP_NORM = 0.1, 0.01, 1.0
EVAL_BATCH = 64
LOG_EVERY = 10  # steps between progress lines
# Parameters exempt from weight decay, by name (the reference fine-tuning script's list).
NO_DECAY = ("bias", "LayerNorm.weight")
PUNCTUATION = set(string.punctuation)


# --- data -----------------------------------------------------------------------------------


def parse_slice(text):
    """'0:8' -> slice(0, 8); '-10:' -> slice(-10, None): a Python slice of the article list."""
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected START:STOP (e.g. 0:8 or -10:), got {text!r}")
    try:
        return slice(*(int(p) if p.strip() else None for p in parts))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected integers in {text!r}") from e


def load_questions(path, articles):
    """The questions of the SQuAD JSON file's `articles` (a slice), in file order: dicts with id,
    question, context and answers (a list of {"text", "answer_start"})."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    return [
        {
            "id": qa["id"],
            # run_qa strips leading spaces: some questions start with many, wasting the window.
            "question": qa["question"].lstrip(),
            "context": paragraph["context"],
            "answers": qa["answers"],
        }
        for article in data[articles]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def cut_question(tokenizer, question, max_query):
    """The question cut after its `max_query`-th token (at that token's last character)."""
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_query:
        return question
    return question[: enc["offset_mapping"][max_query - 1][1]]


def make_windows(tokenizer, questions, max_len, stride, max_query):
    """run_qa's tokenisation: one encoding per window; `overflow_to_sample_mapping` gives each
    window's question, `offset_mapping` its tokens' character spans, `sequence_ids` (a method)
    which tokens are context (1)."""
    return tokenizer(
        [cut_question(tokenizer, q["question"], max_query) for q in questions],
        [q["context"] for q in questions],
        truncation="only_second",
        max_length=max_len,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )


def train_labels(windows, questions, cls_id):
    """(starts, ends): run_qa's `prepare_train_features` labels. The first answer's token span
    when the window's context holds all of it, else the [CLS] position for both."""
    starts, ends = [], []
    for i, offsets in enumerate(windows["offset_mapping"]):
        ids = windows["input_ids"][i]
        cls_index = ids.index(cls_id)
        seq = windows.sequence_ids(i)
        answer = questions[windows["overflow_to_sample_mapping"][i]]["answers"][0]
        start_char = answer["answer_start"]
        end_char = start_char + len(answer["text"])
        first = seq.index(1)  # first context token
        last = len(ids) - 1 - seq[::-1].index(1)  # last context token
        if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
            starts.append(cls_index)
            ends.append(cls_index)
            continue
        while first < len(offsets) and offsets[first][0] <= start_char:
            first += 1
        while offsets[last][1] >= end_char:
            last -= 1
        starts.append(first - 1)
        ends.append(last + 1)
    return starts, ends


def context_offsets(windows):
    """Per window, the offset mapping with None for every token that is not context, as run_qa's
    `prepare_validation_features` leaves it, so decoding never answers from the question."""
    return [
        [o if s == 1 else None for o, s in zip(offsets, windows.sequence_ids(i), strict=True)]
        for i, offsets in enumerate(windows["offset_mapping"])
    ]


def pad_batch(windows, rows):
    """The windows `rows` as int64 tensors padded to their longest row (pad id 0)."""
    import torch

    longest = max(len(windows["input_ids"][r]) for r in rows)
    batch = {}
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        batch[key] = torch.tensor(
            [windows[key][r] + [0] * (longest - len(windows[key][r])) for r in rows],
            dtype=torch.long,
        )
    return batch


# --- training and decoding ------------------------------------------------------------------


def steps_for(count, batch, epochs):
    """Optimizer steps of `epochs` (a float: a share of a last epoch counts) of `count` windows."""
    return int(math.ceil(count / batch) * epochs)


def make_optimizer(model, lr, steps):
    """(AdamW, its schedule): weight decay except on `NO_DECAY`, warmup over the first
    `WARMUP_FRACTION` of `steps`, then linear decay to 0."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    named = list(model.named_parameters())
    groups = [
        {
            "params": [p for n, p in named if not any(k in n for k in NO_DECAY)],
            "weight_decay": WEIGHT_DECAY,
        },
        {"params": [p for n, p in named if any(k in n for k in NO_DECAY)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr)
    return opt, get_linear_schedule_with_warmup(opt, int(WARMUP_FRACTION * steps), steps)


def batch_rows(count, batch, steps, seed):
    """The window rows of each of `steps` batches: all `count` windows shuffled by `seed` at the
    start of every epoch, cut into batches (an epoch's last batch may be short)."""
    shuffler = random.Random(seed)
    done = 0
    while True:
        order = list(range(count))
        shuffler.shuffle(order)
        for i in range(0, count, batch):
            yield order[i : i + batch]
            done += 1
            if done >= steps:
                return


def train_step(model, opt, schedule, windows, rows, starts, ends):
    """One optimizer step on the windows `rows`; returns (loss, the rate it used)."""
    import torch

    batch = pad_batch(windows, rows)
    out = model(
        **batch,
        start_positions=torch.tensor([starts[r] for r in rows]),
        end_positions=torch.tensor([ends[r] for r in rows]),
    )
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
    rate = opt.param_groups[0]["lr"]
    opt.step()
    schedule.step()
    opt.zero_grad()
    return out.loss.item(), rate


def train(model, windows, starts, ends, args):
    """Fine-tunes `model` in place for `args.epochs`; returns the number of optimizer steps."""
    count = len(windows["input_ids"])
    steps = steps_for(count, args.batch, args.epochs)
    opt, schedule = make_optimizer(model, args.lr, steps)
    model.train()
    for step, rows in enumerate(batch_rows(count, args.batch, steps, args.seed), 1):
        loss, _ = train_step(model, opt, schedule, windows, rows, starts, ends)
        if step % LOG_EVERY == 0 or step == steps:  # progress on stderr; stdout is the result
            print(f"step {step}/{steps} loss {loss:.4f}", file=sys.stderr, flush=True)
    return steps


def window_logits(model, windows):
    """Per window, (start logits, end logits) as numpy arrays of its own length."""
    import torch

    model.eval()
    count = len(windows["input_ids"])
    out = []
    with torch.no_grad():
        for i in range(0, count, EVAL_BATCH):
            rows = list(range(i, min(i + EVAL_BATCH, count)))
            result = model(**pad_batch(windows, rows))
            for j, r in enumerate(rows):
                n = len(windows["input_ids"][r])
                out.append((result.start_logits[j, :n].numpy(), result.end_logits[j, :n].numpy()))
    return out


def best_answers(questions, windows, logits):
    """Question id -> answer text: utils_qa.py's `postprocess_qa_predictions` for SQuAD v1.1.
    Every window of a question proposes its N_BEST starts x N_BEST ends; spans on context tokens,
    end not before start and at most MAX_ANSWER tokens compete on start + end logit; the best
    one's text is cut from the original context by character offsets ("" when none is valid)."""
    import numpy as np

    offsets = context_offsets(windows)
    by_question = collections.defaultdict(list)
    for w, q in enumerate(windows["overflow_to_sample_mapping"]):
        by_question[q].append(w)
    answers = {}
    for q, question in enumerate(questions):
        best_score, best_text = -math.inf, ""
        for w in by_question[q]:
            start_logits, end_logits = logits[w]
            spans = offsets[w]
            for s in np.argsort(start_logits)[-1 : -N_BEST - 1 : -1].tolist():
                for e in np.argsort(end_logits)[-1 : -N_BEST - 1 : -1].tolist():
                    if spans[s] is None or spans[e] is None:
                        continue
                    if e < s or e - s + 1 > MAX_ANSWER:
                        continue
                    score = float(start_logits[s] + end_logits[e])
                    if score > best_score:
                        best_score = score
                        best_text = question["context"][spans[s][0] : spans[e][1]]
        answers[question["id"]] = best_text
    return answers


# --- official SQuAD v1.1 scoring ------------------------------------------------------------


def normalize_answer(text):
    """Lower case, drop punctuation, the articles a/an/the and extra whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction, gold):
    return normalize_answer(prediction) == normalize_answer(gold)


def token_f1(prediction, gold):
    """F1 of the normalised tokens, counted with multiplicity."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    same = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(questions, predictions):
    """{"exact_match", "f1"} in percent over `questions`, each the best over its gold answers;
    a question without a prediction scores 0, as the official script scores it."""
    em = f1 = 0.0
    for q in questions:
        if q["id"] not in predictions:
            continue
        golds = [a["text"] for a in q["answers"]]
        em += max(exact_match(predictions[q["id"]], g) for g in golds)
        f1 += max(token_f1(predictions[q["id"]], g) for g in golds)
    return {"exact_match": 100.0 * em / len(questions), "f1": 100.0 * f1 / len(questions)}


# --- entry point ----------------------------------------------------------------------------


def load_model(model_dir, dropout=None):
    """(tokenizer, BertForQuestionAnswering) of `model_dir`; `dropout`, when given, replaces the
    checkpoint's hidden and attention dropout."""
    from transformers import BertForQuestionAnswering, BertTokenizerFast

    rates = {}
    if dropout is not None:
        rates = dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    tokenizer = BertTokenizerFast.from_pretrained(model_dir)
    return tokenizer, BertForQuestionAnswering.from_pretrained(model_dir, **rates)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", help="a Hugging Face BERT directory (weights and tokenizer)")
    p.add_argument("squad_json", help="a SQuAD v1.1 JSON file (e.g. dev-v1.1.json)")
    p.add_argument("seed", type=int)
    p.add_argument("--train_articles", type=parse_slice, default=parse_slice("0:8"))
    p.add_argument("--eval_articles", type=parse_slice, default=parse_slice("-10:"))
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max_len", type=int, default=256)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--max_query", type=int, default=64)
    p.add_argument(
        "--dropout", type=float, help="hidden and attention dropout (default: the checkpoint's)"
    )
    p.add_argument("--out", help="a folder to write predictions.json in")
    p.add_argument("--save_model", help="a folder to save the fine-tuned model and tokenizer in")
    # argparse reads a value like "-10:" as an option: bind slice values to their flag first.
    argv = list(argv)
    for i in range(len(argv) - 2, -1, -1):
        if argv[i] in ("--train_articles", "--eval_articles"):
            argv[i : i + 2] = [f"{argv[i]}={argv[i + 1]}"]
    return p.parse_args(argv)


def main(argv):
    import numpy as np
    import torch

    args = parse_args(argv)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(2)
    train_questions = load_questions(args.squad_json, args.train_articles)
    eval_questions = load_questions(args.squad_json, args.eval_articles)
    if not train_questions or not eval_questions:
        sys.exit(f"hf_squad_ref: {args.squad_json}: no questions in the train or eval articles")
    tokenizer, model = load_model(args.model_dir, args.dropout)
    window_args = (args.max_len, args.stride, args.max_query)
    train_windows = make_windows(tokenizer, train_questions, *window_args)
    starts, ends = train_labels(train_windows, train_questions, tokenizer.cls_token_id)
    eval_windows = make_windows(tokenizer, eval_questions, *window_args)

    t0 = time.time()
    steps = train(model, train_windows, starts, ends, args)
    train_s = time.time() - t0
    if args.save_model:
        model.save_pretrained(args.save_model, safe_serialization=True)
        tokenizer.save_pretrained(args.save_model)
    predictions = best_answers(eval_questions, eval_windows, window_logits(model, eval_windows))
    scores = squad_scores(eval_questions, predictions)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "predictions.json"), "w", encoding="utf-8") as f:
            json.dump(predictions, f, ensure_ascii=False)
    line = {
        "task": "squad_v1.1",
        "seed": args.seed,
        "epochs": args.epochs,
        "lr": args.lr,
        "dropout": model.config.hidden_dropout_prob,
        "batch": args.batch,
        "max_len": args.max_len,
        "stride": args.stride,
        "max_query": args.max_query,
        "train_questions": len(train_questions),
        "train_windows": len(train_windows["input_ids"]),
        "train_steps": steps,
        "eval_questions": len(eval_questions),
        "eval_windows": len(eval_windows["input_ids"]),
        "train_s": round(train_s),
        **{k: round(v, 2) for k, v in scores.items()},
    }
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
