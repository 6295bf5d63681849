"""What a fine-tuned GLUE run leaves in its workdir, predicted by its best checkpoint.

  eval_results.json          {"task", "step", "epoch", "init_from", "checkpoint",
                              "splits": {split: {metric: value, ..., "loss", "examples"}}}
                             metrics as fractions (accuracy 0.84, not 84); epoch = step /
                             optimizer steps per pass over the training set (null when the
                             training file is no longer there to count)
  predictions_<split>.tsv    one row per example of a labelled split, in file order:
                             index  label  prediction  probability_<label> ...
                             (`index`: the example's row in the split's file, 0-based after the
                             header; labels as GLUE writes them; STS-B: index label prediction,
                             the scores unclipped)
  submission/<GLUE name>     for each test split found: `index<TAB>prediction`, GLUE's ids and
                             label strings (STS-B: the score clipped to [0, 5]), ready to upload;
                             the MNLI run also writes AX.tsv when GLUE's diagnostic file is found

TSV (not JSON lines) so the files read like the GLUE files they describe and load with any
spreadsheet or `pandas.read_csv(sep="\\t")`. A test split whose file is missing is skipped with
one line, not an error: GLUE's download has them, copies of it often do not.

Every process computes (the eval step is a collective); only process 0 writes, and ends with
a summary table (`outputs_table`: each split's metrics beside the task's baselines, the files,
the time taken).
"""

from __future__ import annotations

import dataclasses
import json
import time

import jax
import numpy as np

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.report_table import SummaryTable, duration
from bert_jax.tasks import glue_readers, sentence_batches
from bert_jax.tasks.classification import Predictions, gather_predictions
from bert_jax.tasks.finetune_run import FinetunedRun, open_run, warn
from bert_jax.tasks.glue_tasks import GLUE_TASKS, GlueTask
from bert_jax.trainer import run_summary

RESULTS_FILE = "eval_results.json"
SUBMISSION_DIR = "submission"
STSB_RANGE = (0.0, 5.0)  # GLUE's similarity scale; the server expects scores inside it


@dataclasses.dataclass(frozen=True)
class Target:
    """One split to predict: `spec` is the run's task, or a task it predicts (AX for MNLI)."""

    spec: GlueTask
    split: str
    required: bool = True  # False: a missing file is skipped (test splits asked for as a group)

    @property
    def labelled(self) -> bool:
        return not self.split.startswith("test")

    @property
    def name(self) -> str:
        """How the split is called on the command line ("ax" for the diagnostic set)."""
        return self.spec.name if self.spec.predict_with else self.split


@dataclasses.dataclass
class SplitResult:
    target: Target
    examples: int = 0
    metrics: dict[str, float] | None = None  # labelled splits
    written: str | None = None  # the file written (relative to the workdir)
    skipped: str | None = None  # why nothing was written

    def describe(self) -> str:
        """One line for the console."""
        name = self.target.name
        if self.skipped:
            return f"{name}: skipped ({self.skipped})"
        if self.metrics is None:
            return f"{name}: {self.examples} predictions -> {self.written}"
        shown = " ".join(f"{k} {v:.4f}" for k, v in self.metrics.items())
        return f"{name}: {shown} ({self.examples} examples) -> {self.written}"


def predicted_with(spec: GlueTask) -> list[GlueTask]:
    """Tasks without training data that `spec`'s model predicts (MNLI: AX)."""
    return [task for task in GLUE_TASKS.values() if task.predict_with == spec.name]


def targets(spec: GlueTask, which: str = "dev") -> list[Target]:
    """The splits `which` names: "dev" (every dev split), "test" (every test split, and those
    of the tasks `spec` predicts; missing files skipped), one of `spec`'s split names, or the
    name of a task it predicts ("ax")."""
    others = predicted_with(spec)
    if which == "dev":
        return [Target(spec, split) for split in spec.dev_splits]
    if which == "test":
        found = [Target(spec, split, required=False) for split in spec.test_splits]
        return found + [Target(o, s, required=False) for o in others for s in o.test_splits]
    if which in spec.files:
        return [Target(spec, which)]
    for other in others:
        if which == other.name:
            return [Target(other, split) for split in other.test_splits]
    splits = [split for split in spec.files if split not in ("dev", "test")]
    names = " ".join(["dev", "test", *splits, *(other.name for other in others)])
    raise UserError(f"unknown split {which!r} for glue/{spec.name} (choose one of: {names})")


# --- file contents ------------------------------------------------------------------------------


def _label_names(spec: GlueTask, values: np.ndarray) -> list[str]:
    """Label indices as GLUE's strings ("" where the split has no label)."""
    return [spec.labels[int(v)] if v >= 0 else "" for v in values]


def predictions_tsv(spec: GlueTask, indices: np.ndarray, predictions: Predictions) -> str:
    """The predictions file of a labelled split (see the module docstring)."""
    if spec.is_regression:
        lines = ["index\tlabel\tprediction"]
        for index, gold, score in zip(
            indices, predictions.labels, predictions.predicted, strict=True
        ):
            gold_text = "" if np.isnan(gold) else f"{gold:.3f}"
            lines.append(f"{index}\t{gold_text}\t{score:.6f}")
        return "\n".join(lines) + "\n"
    header = ["index", "label", "prediction", *(f"probability_{label}" for label in spec.labels)]
    lines = ["\t".join(header)]
    gold = _label_names(spec, predictions.labels)
    predicted = _label_names(spec, predictions.predicted)
    for i, probabilities in enumerate(predictions.probabilities):
        shown = "\t".join(f"{p:.6f}" for p in probabilities)
        lines.append(f"{indices[i]}\t{gold[i]}\t{predicted[i]}\t{shown}")
    return "\n".join(lines) + "\n"


def submission_tsv(spec: GlueTask, indices: np.ndarray, predictions: Predictions) -> str:
    """A test split's file for GLUE's server: `index<TAB>prediction`, one row per id."""
    if spec.is_regression:
        scores = np.clip(predictions.predicted, *STSB_RANGE)
        values = [f"{score:.3f}" for score in scores]
    else:
        values = _label_names(spec, predictions.predicted)
    rows = [f"{index}\t{value}" for index, value in zip(indices, values, strict=True)]
    return "\n".join(["index\tprediction", *rows]) + "\n"


# --- running and writing ------------------------------------------------------------------------


def _write(path: paths.Path, text: str) -> None:
    if jax.process_index() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.write_atomic(path, text)


def _examples(run: FinetunedRun, target: Target):
    """The target's examples, or None with the reason when an optional file is missing."""
    data = run.config.data
    if not target.required and not data.tfds:
        try:
            glue_readers.split_path(target.spec, data.data_dir, target.split)
        except UserError as e:
            return None, str(e)
    return run.read_examples(target.split, target.spec), None


def predict_target(run: FinetunedRun, target: Target) -> SplitResult:
    """Predict one split and write its file (labelled: metrics and predictions_<split>.tsv;
    test: the submission file)."""
    examples, missing = _examples(run, target)
    if examples is None:
        return SplitResult(target, skipped=missing)
    features = run.encode(examples)
    result = SplitResult(target, examples=len(features))
    if target.labelled:
        outputs = run.eval_outputs(features, target.name)
        if not outputs:
            raise UserError(f"{run.name} {target.split} split holds no examples")
        predictions = gather_predictions(outputs)
        result.metrics = run.task.evaluate(target.split, outputs)
        result.written = f"predictions_{target.split}.tsv"
        text = predictions_tsv(target.spec, features.indices[predictions.rows], predictions)
    else:
        predictions = run.predict(features, target.name)
        result.written = f"{SUBMISSION_DIR}/{target.spec.submission_files[target.split]}"
        text = submission_tsv(target.spec, features.indices[predictions.rows], predictions)
    _write(run.workdir / result.written, text)
    return result


def steps_per_epoch(run: FinetunedRun) -> int | None:
    """Optimizer steps per pass over the run's training set (None: the file is gone)."""
    try:
        examples = run.read_examples("train")
    except UserError as e:
        warn(f"note: epoch not reported: {e}")
        return None
    return sentence_batches.steps_per_epoch(len(examples), run.config.train.batch_size)


def results_json(run: FinetunedRun, results: list[SplitResult], per_epoch: int | None) -> dict:
    return {
        "task": run.name,
        "step": run.step,
        "epoch": None if per_epoch is None else run.step / per_epoch,
        "init_from": run.metadata.get("init_from") or run.config.get("init_from") or None,
        "checkpoint": str(run.step_dir),
        "splits": {
            r.target.split: {**r.metrics, "examples": r.examples}
            for r in results
            if r.metrics is not None
        },
    }


def write_results(run: FinetunedRun, results: list[SplitResult]) -> dict | None:
    """Write (or, for the same step, update) eval_results.json with the labelled splits of
    `results`; returns what the file holds (None when no split was labelled)."""
    if not any(r.metrics is not None for r in results):
        return None
    content = results_json(run, results, steps_per_epoch(run))
    file = run.workdir / RESULTS_FILE
    if file.exists():
        try:
            before = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError):
            before = {}
        if before.get("step") == run.step and before.get("task") == run.name:
            content["splits"] = {**before.get("splits", {}), **content["splits"]}
    _write(file, json.dumps(content, indent=2) + "\n")
    return content


def write_split_outputs(run: FinetunedRun, which: str) -> tuple[list[SplitResult], dict | None]:
    """Predict the splits `which` names (see `targets`) and write their files; returns every
    split's result and the eval_results.json content (None when nothing labelled ran)."""
    results = [predict_target(run, target) for target in targets(run.spec, which)]
    return results, write_results(run, results)


def outputs_table(run: FinetunedRun, results: list[SplitResult], seconds: float) -> SummaryTable:
    """What was scored and written: the checkpoint, every labelled split's metrics (beside the
    task's baselines where it has them), the test predictions, the files, the time taken."""
    table = SummaryTable(f"{run.name}: outputs of step {run.step:,}")
    table.add("checkpoint", f"step {run.step:,} ({run.step_dir})")
    baselines = run_summary.task_baselines(run.task)
    for result in results:
        name = result.target.name
        if result.skipped:
            table.add(name, f"nothing written ({result.skipped})")
        elif result.metrics is None:
            table.add(name, f"{result.examples:,} predictions")
        else:
            split = result.target.split
            run_summary.add_metrics(table, f"{name} ", result.metrics, baselines, split)
    written = [r.written for r in results if r.written]
    if any(r.metrics is not None for r in results):
        written.insert(0, RESULTS_FILE)
    table.add("written", f"{', '.join(written)} in {run.workdir}" if written else "nothing")
    table.add("time", duration(seconds))
    return table


def write_outputs(config, workdir) -> None:
    """After `bert-jax finetune`: the best checkpoint's dev results, dev predictions and test
    submissions (the module docstring lists the files)."""
    started = time.perf_counter()
    run = open_run(workdir, config=config)
    lines = [f"outputs of {run.name} step {run.step} in {run.workdir}:"]
    every = []
    for which in ("dev", "test"):
        results, _ = write_split_outputs(run, which)
        lines += [f"  {r.describe()}" for r in results]
        every += results
    lines.insert(1, f"  {RESULTS_FILE}")
    if jax.process_index() == 0:
        print("\n".join(lines), flush=True)
        outputs_table(run, every, time.perf_counter() - started).print()
