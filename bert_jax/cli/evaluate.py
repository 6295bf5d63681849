"""`bert-jax evaluate --workdir=DIR [--split=dev|test|SPLIT] [--step=N] [--data_dir=D] [--json]`
`bert-jax evaluate --task=TASK --gold=PATH --predictions=PATH [--na_probs=PATH] [--json]`

The second form scores a predictions file against gold data as the task's official script does,
without a model (`bert_jax/tasks/score_files.py`): TASK is squad_v1.1, squad_v2.0, conll2003
or glue/TASK; `--json` ends with one JSON object of the official key names.

Re-scores a fine-tuned run: the task, model, vocabulary and data settings come from the run's
checkpoint metadata; the params of its best step (by the task's main metric; `--step` for
another) are placed on this host's devices and evaluated as training evaluated them. Prints
one line per split and rewrites that split's outputs in the workdir (`--split=dev`:
eval_results.json and predictions_<split>.tsv; `--split=test`: the submission files; see
`bert_jax/tasks/finetune_outputs.py`). `--json` adds one JSON object as the last line.

`--data_dir` replaces the run's GLUE folder (the data moved, or another copy holds test.tsv).
On several hosts run the same command on every host (as for training); process 0 writes.
"""

from __future__ import annotations

import argparse
import json

from bert_jax.cli.parser import command_parser

PROG = "bert-jax evaluate"


DESCRIPTION = """\
Score a fine-tuned model, in one of two ways.

With --workdir, re-score a fine-tuning run: the task, model, vocabulary and data settings come
from the run's checkpoint metadata; its best checkpoint (or --step) is evaluated as training
evaluated it. One line per split is printed and the split's outputs in the workdir are
rewritten (--split=dev: eval_results.json and the predictions; --split=test: the submission
files). --data_dir points at the data when it moved. On several hosts run the same command on
every host, as for training.

With --task, --gold and --predictions, score a predictions file against gold data as the task's
official script does, without a model: TASK is squad_v1.1, squad_v2.0, conll2003 or glue/TASK."""

EXAMPLES = [
    "bert-jax evaluate --workdir=workdir/quickstart-finetune   # dev scores of the best step",
    "bert-jax evaluate --workdir=runs/mrpc --split=test   # GLUE submission files",
    "bert-jax evaluate --task=squad_v1.1 --gold=dev-v1.1.json \\\n"
    "    --predictions=runs/squad/predictions.json --json",
]


def _parser() -> argparse.ArgumentParser:
    p = command_parser(PROG, DESCRIPTION, EXAMPLES)
    p.add_argument("--workdir", help="the fine-tuning run's workdir")
    p.add_argument(
        "--task", help="score files without a model: squad_v1.1, squad_v2.0, conll2003, glue/TASK"
    )
    p.add_argument("--gold", help="with --task: the gold data (official JSON, CoNLL file, TSV)")
    p.add_argument("--predictions", help="with --task: the predictions file to score")
    p.add_argument("--na_probs", help="with --task=squad_v2.0: null_odds.json (optional)")
    p.add_argument(
        "--articles", default="", help="with --task=squad_*: a slice of the gold articles (-10:)"
    )
    p.add_argument(
        "--split",
        default="dev",
        help="dev (every dev split, default), test (submission files), or one split name "
        "(dev_matched, test_mismatched, train, ax, ...)",
    )
    p.add_argument("--step", type=int, help="checkpoint step (default: the best one)")
    p.add_argument("--data_dir", help="GLUE folder to read instead of the run's data.data_dir")
    p.add_argument("--json", action="store_true", help="end with one JSON object of the results")
    return p


def score_files(args) -> int:
    """The `--task --gold --predictions` form: no model, no JAX."""
    from bert_jax.errors import UserError
    from bert_jax.tasks import score_files as scoring

    if not (args.gold and args.predictions):
        raise UserError("--task needs --gold=PATH and --predictions=PATH")
    scored = scoring.score(args.task, args.gold, args.predictions, args.na_probs, args.articles)
    for kind, ids in (("missing", scored.missing), ("extra", scored.extra)):
        if ids:
            shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
            print(f"{len(ids)} {kind} predictions: {shown}")
    if scored.note:
        print(scored.note)
    print(f"{args.task}: " + " ".join(f"{k} {v:.4f}" for k, v in scored.metrics.items()))
    if args.json:
        print(json.dumps(scored.metrics))
    return 0


def other_task(args, family: str) -> int:
    """SQuAD, NER and SWAG runs: every evaluation split re-scored, the outputs rewritten."""
    import jax

    from bert_jax.errors import UserError
    from bert_jax.tasks import task_outputs

    if args.split != "dev":
        raise UserError(f"--split is for GLUE runs; a {family} run evaluates its own splits")
    content = task_outputs.write_outputs(None, args.workdir, step=args.step, data_dir=args.data_dir)
    if args.json and jax.process_index() == 0:
        print(json.dumps(content))
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from bert_jax.errors import UserError

    if args.task:
        if args.workdir:
            raise UserError("give either --workdir (a run) or --task with --gold/--predictions")
        return score_files(args)
    if not args.workdir:
        raise UserError(
            "--workdir=DIR (re-score a run) or --task=TASK --gold=PATH --predictions=PATH"
        )

    import time

    from bert_jax import distributed

    started = time.perf_counter()
    # Before anything touches a device (a pod evaluates as it trained: every host runs this).
    distributed.initialize()

    import jax

    from bert_jax.tasks import finetune_outputs, finetune_run, task_run

    family = task_run.family_of(args.workdir)
    if family not in ("glue", "pretraining"):
        return other_task(args, family)
    # An unknown split fails before any params are read.
    finetune_outputs.targets(finetune_run.run_info(args.workdir).spec, args.split)
    run = finetune_run.open_run(args.workdir, data_dir=args.data_dir, step=args.step)
    results, content = finetune_outputs.write_split_outputs(run, args.split)
    if jax.process_index() != 0:
        return 0
    print(f"{run.name} step {run.step} ({run.step_dir}):")
    for result in results:
        print(f"  {result.describe()}")
    finetune_outputs.outputs_table(run, results, time.perf_counter() - started).print()
    if args.json:
        summary = {
            "task": run.name,
            "step": run.step,
            "epoch": content["epoch"] if content else None,
            "checkpoint": str(run.step_dir),
            "splits": {
                r.target.split: {**r.metrics, "examples": r.examples}
                for r in results
                if r.metrics is not None
            },
            "files": [r.written for r in results if r.written],
            "skipped": {r.target.name: r.skipped for r in results if r.skipped},
        }
        print(json.dumps(summary))
    return 0
