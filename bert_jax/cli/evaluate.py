"""`bert-jax evaluate --workdir=DIR [--split=dev|test|SPLIT] [--step=N] [--data_dir=D] [--json]`

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

PROG = "bert-jax evaluate"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Re-score a fine-tuned run.")
    p.add_argument("--workdir", required=True, help="the fine-tuning run's workdir")
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


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)

    from bert_jax import distributed

    # Before anything touches a device (a pod evaluates as it trained: every host runs this).
    distributed.initialize()

    import jax

    from bert_jax.tasks import finetune_outputs, finetune_run

    # An unknown split fails before any params are read.
    finetune_outputs.targets(finetune_run.run_info(args.workdir).spec, args.split)
    run = finetune_run.open_run(args.workdir, data_dir=args.data_dir, step=args.step)
    results, content = finetune_outputs.write_split_outputs(run, args.split)
    if jax.process_index() != 0:
        return 0
    print(f"{run.name} step {run.step} ({run.step_dir}):")
    for result in results:
        print(f"  {result.describe()}")
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
