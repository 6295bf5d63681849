"""What a fine-tuned SQuAD, NER or SWAG run leaves in its workdir, from its best checkpoint.

  eval_results.json         {"task", "step", "checkpoint", "init_from", "metrics", "files"}:
                            every evaluation split's metrics as training reports them
                            (`split/metric` where the task has several splits)
  SQuAD                     predictions.json, nbest.json (and null_odds.json for v2.0): what
                            the official evaluation scripts read
  CoNLL-2003                predictions_<split>.txt: `word gold predicted` per word, what
                            `conlleval` reads
  SWAG                      predictions_<split>.tsv: index, label, prediction, probability
                            of each choice

Every process computes (the eval step is a collective); only process 0 writes, and ends with
a summary table (the metrics beside the task's baselines, the files, the time taken).
"""

from __future__ import annotations

import json
import time

import jax

from bert_jax import paths
from bert_jax.report_table import SummaryTable, duration
from bert_jax.tasks import registry
from bert_jax.tasks.classification import gather_predictions
from bert_jax.tasks.task_run import RESULTS_FILE, TaskRun, open_task_run
from bert_jax.trainer import run_summary


def _write(path: paths.Path, text: str) -> None:
    if jax.process_index() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.write_atomic(path, text)


def squad_outputs(run: TaskRun) -> tuple[dict, list[str]]:
    metrics = run.evaluate()
    if jax.process_index() != 0:
        return metrics, []
    return metrics, run.task.write_outputs(run.workdir)


def ner_outputs(run: TaskRun) -> tuple[dict, list[str]]:
    from bert_jax.tasks.ner import conll_predictions
    from bert_jax.tasks.token_classification import word_predictions

    task, metrics, files = run.task, {}, []
    for split, features in task.data.eval_features.items():
        outputs = run.outputs(task.data.batches(features), split)
        metrics |= {f"{split}/{k}": v for k, v in task.evaluate(split, outputs).items()}
        tags = word_predictions(features, outputs, task.labels)
        files.append(f"predictions_{split}.txt")
        _write(run.workdir / files[-1], conll_predictions(task.sentences[split], tags))
    return metrics, files


def choice_outputs(run: TaskRun) -> tuple[dict, list[str]]:
    task, metrics, files = run.task, {}, []
    for split, features in task.data.eval_features.items():
        outputs = run.outputs(task.data.batches(features), split)
        metrics |= task.evaluate(split, outputs)
        predictions = gather_predictions(outputs)
        width = predictions.logits.shape[1]
        lines = [
            "\t".join(["index", "label", "prediction", *(f"probability_{i}" for i in range(width))])
        ]
        for row, gold, best, probabilities in zip(
            predictions.rows,
            predictions.labels,
            predictions.predicted,
            predictions.probabilities,
            strict=True,
        ):
            shown = "\t".join(f"{p:.6f}" for p in probabilities)
            lines.append(f"{row}\t{int(gold)}\t{int(best)}\t{shown}")
        files.append(f"predictions_{split}.tsv")
        _write(run.workdir / files[-1], "\n".join(lines) + "\n")
    return metrics, files


WRITERS = {"squad": squad_outputs, "ner": ner_outputs, "swag": choice_outputs}


def write_outputs(config, workdir, step: int | None = None, data_dir: str | None = None) -> dict:
    """Evaluate the best checkpoint (or `step`) of the run in `workdir`, write its files and
    eval_results.json; returns what eval_results.json holds."""
    started = time.perf_counter()
    run = open_task_run(workdir, config=config, step=step, data_dir=data_dir)
    metrics, files = WRITERS[registry.family(run.config.task)](run)
    content = {
        "task": run.task.name,
        "step": run.step,
        "checkpoint": str(run.step_dir),
        "init_from": run.metadata.get("init_from"),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "files": [RESULTS_FILE, *files],
    }
    _write(run.workdir / RESULTS_FILE, json.dumps(content, indent=2) + "\n")
    if jax.process_index() == 0:
        shown = " ".join(f"{k} {v:.4f}" for k, v in content["metrics"].items())
        print(f"outputs of {run.task.name} step {run.step} in {run.workdir}:", flush=True)
        print(f"  {shown}", flush=True)
        print(f"  {' '.join(content['files'])}", flush=True)
        outputs_table(run, content, time.perf_counter() - started).print()
    return content


def outputs_table(run: TaskRun, content: dict, seconds: float) -> SummaryTable:
    """What was scored and written: the checkpoint, the metrics (beside the task's baselines
    where it has them), the files, the time taken."""
    table = SummaryTable(f"{run.task.name}: outputs of step {run.step:,}")
    table.add("checkpoint", f"step {run.step:,} ({run.step_dir})")
    run_summary.add_metrics(table, "", content["metrics"], run_summary.task_baselines(run.task))
    table.add("written", f"{', '.join(content['files'])} in {run.workdir}")
    table.add("time", duration(seconds))
    return table
