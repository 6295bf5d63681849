"""`bert-jax predict --workdir=DIR [--step=N] < lines`

Predicts with a fine-tuned run (its best checkpoint, or `--step`). SQuAD runs read
`question<TAB>context` lines and CoNLL-2003 runs plain sentences (`bert_jax/tasks/predict_lines.py`
shows what they print); GLUE runs as follows. Each stdin line (UTF-8)
is one example: a text for a single-sentence task (CoLA, SST-2), two texts separated by one TAB
for a pair task (MRPC, STS-B, MNLI, ...). Prints one JSON object a line, in the input order:

  {"label": "entailment", "probabilities": {"contradiction": 0.01, "entailment": 0.97, ...}}
  {"score": 3.82}                      (STS-B: the model's score, unclipped)

Lines are read in chunks of `--chunk` and each chunk runs as the run's evaluation batches
(sorted by length, padded as in training), so any number of lines streams through in constant
memory. A line of the wrong shape stops with one line naming it (exit 2); the lines before it
have been printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator

from bert_jax.cli.parser import command_parser
from bert_jax.errors import UserError

PROG = "bert-jax predict"


DESCRIPTION = """\
Predict the lines on stdin (UTF-8) with a fine-tuned run's best checkpoint (or --step), printing
one JSON object a line in the input order. What a line holds depends on the run's task:

  task                      a line                prints
  CoLA, SST-2               a text                {"label": ..., "probabilities": {...}}
  MRPC, MNLI, STS-B, ...    text_a TAB text_b     the same; STS-B {"score": 3.82}
  SQuAD                     question TAB context  {"answer": ..., "probability": ..., "nbest": []}
  CoNLL-2003 NER            a sentence            {"words": [], "tags": [], "entities": [...]}

Lines are read in chunks of --chunk and each chunk runs as evaluation batches, so any number of
lines streams through in constant memory. A line of the wrong shape stops with one line naming
it (exit 2); the lines before it have been printed."""

EXAMPLES = [
    "echo 'Return the number of items in a container.' | \\\n"
    "    bert-jax predict --workdir=workdir/quickstart-finetune   # docstring or reference?",
    "printf 'The cat sat.\\tA cat was sitting.\\n' | bert-jax predict --workdir=runs/mrpc",
    "printf 'Who wrote it?\\tThe book was written by Jane Austen.\\n' | "
    "bert-jax predict --workdir=runs/squad",
]


def _parser() -> argparse.ArgumentParser:
    p = command_parser(PROG, DESCRIPTION, EXAMPLES)
    p.add_argument("--workdir", required=True, help="the fine-tuning run's workdir")
    p.add_argument("--step", type=int, help="checkpoint step (default: the best one)")
    p.add_argument("--chunk", type=int, default=1024, help="lines predicted together")
    return p


def parse_line(raw: bytes, number: int, pairs: bool, task: str):
    """(text_a, text_b) of stdin line `number` (1-based) for a pair or a single-sentence task."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise UserError(f"stdin line {number}: not UTF-8 text (byte {e.start})") from None
    fields = text.split("\t")
    if pairs and len(fields) != 2:
        raise UserError(
            f"stdin line {number}: {task} takes a sentence pair, one TAB between the two "
            f"texts; found {len(fields)} tab-separated fields"
        )
    if not pairs and len(fields) != 1:
        raise UserError(
            f"stdin line {number}: {task} takes one sentence a line; found a TAB "
            f"({len(fields)} fields)"
        )
    return fields[0], fields[1] if pairs else None


def chunks(lines, size: int) -> Iterator[list[tuple[int, bytes]]]:
    """(1-based line number, raw line) in lists of `size`."""
    numbered = enumerate(lines, 1)
    while chunk := list(itertools.islice(numbered, size)):
        yield chunk


def rows(spec, predictions) -> list[dict]:
    """One JSON-ready object per prediction, in order."""
    if spec.is_regression:
        return [{"score": float(score)} for score in predictions.predicted]
    out = []
    for best, probabilities in zip(predictions.predicted, predictions.probabilities, strict=True):
        out.append({
            "label": spec.labels[int(best)],
            "probabilities": dict(zip(spec.labels, map(float, probabilities), strict=True)),
        })  # fmt: skip
    return out


def predict_other(args, family: str, stdin, stdout) -> int:
    """SQuAD answers and CoNLL-2003 tags (`bert_jax/tasks/predict_lines.py`)."""
    from bert_jax.tasks import predict_lines, task_run

    if family not in predict_lines.PREDICTORS:
        raise UserError(f"bert-jax predict does not handle {family} runs (SQuAD, NER, GLUE)")
    run = task_run.open_task_run(args.workdir, step=args.step)
    predictor = predict_lines.PREDICTORS[family]
    for chunk in chunks(stdin, args.chunk):
        stdout.write("".join(json.dumps(row) + "\n" for row in predictor(run, chunk)))
        stdout.flush()
    return 0


def main(argv: list[str], stdin=None, stdout=None) -> int:
    args = _parser().parse_args(argv)
    if args.chunk < 1:
        raise UserError(f"--chunk {args.chunk} must be positive")
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout

    from bert_jax.tasks import finetune_run, task_run
    from bert_jax.tasks.glue_readers import Example

    family = task_run.family_of(args.workdir)
    if family not in ("glue", "pretraining"):
        return predict_other(args, family, stdin, stdout)
    run = finetune_run.open_run(args.workdir, step=args.step)
    spec = run.spec
    pairs = spec.test_columns.text_b is not None
    for chunk in chunks(stdin, args.chunk):
        examples = []
        for number, raw in chunk:
            text_a, text_b = parse_line(raw, number, pairs, spec.dir_name)
            examples.append(Example(index=number, text_a=text_a, text_b=text_b, label=None))
        predictions = run.predict(run.encode(examples))
        stdout.write("".join(json.dumps(row) + "\n" for row in rows(spec, predictions)))
        stdout.flush()
    return 0
