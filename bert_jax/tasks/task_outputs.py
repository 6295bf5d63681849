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

The eval step's outputs come from the training session itself when it evaluated the run's
best step (`loop.BestEvaluation`): no second build of the task, no second pass over the dev
data, which for SQuAD on a small machine is minutes. Otherwise (the best step is an earlier
session's, or `bert-jax evaluate --workdir`) the checkpoint is opened and evaluated again.
Every process computes (the eval step is a collective); only process 0 writes, and ends with
a summary table (where the outputs came from, the metrics beside the task's baselines, the
files, the time taken).
"""

from __future__ import annotations

import dataclasses
import json
import time

import jax

from bert_jax import paths
from bert_jax.checkpoint import metadata as layout
from bert_jax.report_table import SummaryTable, duration
from bert_jax.tasks import finetune_run, registry
from bert_jax.tasks.base import Task
from bert_jax.tasks.classification import gather_predictions
from bert_jax.tasks.task_run import RESULTS_FILE, open_task_run
from bert_jax.trainer import loop, run_summary


def _write(path: paths.Path, text: str) -> None:
    if jax.process_index() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.write_atomic(path, text)


def squad_outputs(task, outputs: dict, workdir: paths.Path) -> tuple[dict, list[str]]:
    metrics = loop.split_metrics(task, outputs)
    if jax.process_index() != 0:
        return metrics, []
    return metrics, task.write_outputs(workdir)


def ner_outputs(task, outputs: dict, workdir: paths.Path) -> tuple[dict, list[str]]:
    from bert_jax.tasks.ner import conll_predictions
    from bert_jax.tasks.token_classification import word_predictions

    metrics, files = {}, []
    for split, features in task.data.eval_features.items():
        metrics |= {f"{split}/{k}": v for k, v in task.evaluate(split, outputs[split]).items()}
        tags = word_predictions(features, outputs[split], task.labels)
        files.append(f"predictions_{split}.txt")
        _write(workdir / files[-1], conll_predictions(task.sentences[split], tags))
    return metrics, files


def choice_outputs(task, outputs: dict, workdir: paths.Path) -> tuple[dict, list[str]]:
    metrics, files = {}, []
    for split in task.data.eval_features:
        metrics |= task.evaluate(split, outputs[split])
        predictions = gather_predictions(outputs[split])
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
        _write(workdir / files[-1], "\n".join(lines) + "\n")
    return metrics, files


WRITERS = {"squad": squad_outputs, "ner": ner_outputs, "swag": choice_outputs}


@dataclasses.dataclass
class Scored:
    """A checkpoint of a fine-tuned run and its eval step's outputs on every split."""

    task: Task
    workdir: paths.Path
    step: int
    step_dir: paths.Path
    metadata: dict
    outputs: dict[str, list[dict]]
    source: str  # for the outputs table: where the outputs came from


def _evaluated(config, workdir, step, data_dir) -> Scored:
    """The checkpoint opened from its workdir and evaluated again."""
    run = open_task_run(workdir, config=config, step=step, data_dir=data_dir)
    outputs = loop.split_outputs(run.eval_fn, run.params, run.task, run.feed)
    return Scored(
        run.task, run.workdir, run.step, run.step_dir, run.metadata, outputs, "evaluated again"
    )


def _kept(workdir, best: loop.BestEvaluation | None) -> Scored | None:
    """The training session's own evaluation of the run's best checkpoint, when it made one;
    None when the best step was evaluated by an earlier session (or the run has no metric)."""
    if best is None:
        return None
    root, _ = layout.resolve(workdir)
    task = best.task
    if finetune_run.pick_step(root, task.main_metric, task.higher_is_better) != best.step:
        return None
    step_dir = root / str(best.step)
    metadata = layout.read_metadata(step_dir)
    source = "this run's evaluation of that step"
    return Scored(task, root.parent, best.step, step_dir, metadata, best.outputs, source)


def write_outputs(
    config,
    workdir,
    step: int | None = None,
    data_dir: str | None = None,
    best: loop.BestEvaluation | None = None,
) -> dict:
    """Score the best checkpoint (or `step`) of the run in `workdir`, write its files and
    eval_results.json; returns what eval_results.json holds. `best`: the training session's
    evaluation of its best step, used as it is when that step is still the run's best (no
    rebuilding of the task, no second pass over the evaluation data)."""
    started = time.perf_counter()
    scored = _kept(workdir, best) if step is None and data_dir is None else None
    if scored is None:
        scored = _evaluated(config, workdir, step, data_dir)
    task = scored.task
    metrics, files = WRITERS[registry.family(task.name)](task, scored.outputs, scored.workdir)
    content = {
        "task": task.name,
        "step": scored.step,
        "checkpoint": str(scored.step_dir),
        "init_from": scored.metadata.get("init_from"),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "files": [RESULTS_FILE, *files],
    }
    _write(scored.workdir / RESULTS_FILE, json.dumps(content, indent=2) + "\n")
    if jax.process_index() == 0:
        shown = " ".join(f"{k} {v:.4f}" for k, v in content["metrics"].items())
        print(f"outputs of {task.name} step {scored.step} in {scored.workdir}:", flush=True)
        print(f"  {shown}", flush=True)
        print(f"  {' '.join(content['files'])}", flush=True)
        seconds = time.perf_counter() - started
        outputs_table(scored, content, seconds).print()
    return content


def outputs_table(scored: Scored, content: dict, seconds: float) -> SummaryTable:
    """What was scored and written: the checkpoint, the metrics (beside the task's baselines
    where it has them), the files, the time taken."""
    table = SummaryTable(f"{scored.task.name}: outputs of step {scored.step:,}")
    table.add("checkpoint", f"step {scored.step:,} ({scored.step_dir})")
    table.add("scored from", scored.source)
    baselines = run_summary.task_baselines(scored.task)
    run_summary.add_metrics(table, "", content["metrics"], baselines)
    table.add("written", f"{', '.join(content['files'])} in {scored.workdir}")
    table.add("time", duration(seconds))
    return table
