"""A fine-tuned SQuAD, NER or SWAG run rebuilt from its workdir: `open_task_run(workdir)`.

The task is built by its family's own `build` (`bert_jax/tasks/registry.py`) from the run
config stored with the checkpoint, with the run's own checkpoint as `init_from`: the
architecture and the vocabulary come from it, exactly as they did in training. The params of
the best step (by the task's main metric; the latest when none is scored, or the step asked
for) are read to the host and placed on this process's mesh, which need not be the run's.

GLUE runs have their own opener (`bert_jax/tasks/finetune_run.py`), which needs no training
data; these families read theirs when they build (SQuAD reads it only when training starts).
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections

from bert_jax import paths, sharding
from bert_jax.checkpoint import init_from
from bert_jax.checkpoint import metadata as layout
from bert_jax.errors import UserError
from bert_jax.tasks import finetune_run, registry
from bert_jax.tasks.base import Task
from bert_jax.trainer import loop
from bert_jax.trainer import state as train_state
from bert_jax.trainer import step as train_step

RESULTS_FILE = "eval_results.json"


@dataclasses.dataclass
class TaskRun:
    """One step of a fine-tuned run, its params on this process's mesh."""

    workdir: paths.Path
    config: ml_collections.ConfigDict
    task: Task
    step: int
    step_dir: paths.Path
    metadata: dict
    feed: sharding.HostFeed
    eval_batch_size: int
    params: object
    eval_fn: object

    def outputs(self, batches, desc: str = "predict") -> list[dict]:
        """The eval step's outputs for host batches (a collective), as host numpy; a progress
        bar named `desc` counts the batches."""
        return loop.eval_outputs(self.eval_fn, self.params, batches, self.feed, desc)


def family_of(workdir: paths.PathLike) -> str:
    """The task family of the run in `workdir` ("pretraining" for a pretraining run)."""
    root, latest = layout.resolve(workdir)
    return registry.family(layout.read_metadata(root / str(latest)).get("task", "pretraining"))


def run_config(workdir: paths.PathLike) -> tuple[paths.Path, dict, ml_collections.ConfigDict]:
    """(checkpoints root, latest metadata, run config) of a fine-tuned run."""
    root, latest = layout.resolve(workdir)
    metadata = layout.read_metadata(root / str(latest))
    task = metadata.get("task", "pretraining")
    if task == "pretraining":
        raise UserError(
            f"{root.parent} holds a pretraining run, not a fine-tuned one: fine-tune it first"
        )
    if not metadata.get("run_config"):
        raise UserError(f"{root.parent}: the checkpoint metadata has no run_config")
    return root, metadata, ml_collections.ConfigDict(metadata["run_config"])


def open_task_run(
    workdir: paths.PathLike,
    *,
    config: ml_collections.ConfigDict | None = None,
    data_dir: str | None = None,
    step: int | None = None,
) -> TaskRun:
    """The fine-tuned run in `workdir` at `step` (None: the best). `config`: the run's config
    when the caller has it; `data_dir` replaces the run's `data.data_dir`."""
    root, latest, stored = run_config(workdir)
    config = ml_collections.ConfigDict((config if config is not None else stored).to_dict())
    if data_dir:
        config.data.data_dir = data_dir
    config.init_from = str(root / str(layout.committed_steps(root)[-1]))
    mesh = finetune_run.evaluation_mesh(config)
    feed = sharding.host_feed(mesh)
    eval_batch_size = finetune_run.evaluation_batch_size(config, mesh)
    task = registry.module(config.task).build(
        config, root.parent, feed, eval_batch_size, finetune_run.warn
    )
    if step is None:
        step = finetune_run.pick_step(root, task.main_metric, task.higher_is_better)
    elif step not in layout.committed_steps(root):
        steps = " ".join(map(str, layout.committed_steps(root)))
        raise UserError(f"{root} has no checkpoint of step {step} (steps: {steps})")
    step_dir = root / str(step)
    metadata = layout.read_metadata(step_dir)
    planned = train_state.plan(
        lambda: task.init_params(jax.random.PRNGKey(0), task.example_batch()), mesh
    )
    params, report = init_from.load_encoder(
        step_dir, planned.abstract, vocab_fingerprint=metadata.get("vocab_fingerprint")
    )
    if report.new:
        raise UserError(
            f"{step_dir} lacks weights of the {task.name} model: {', '.join(report.new[:6])}"
        )
    return TaskRun(
        workdir=root.parent,
        config=config,
        task=task,
        step=step,
        step_dir=step_dir,
        metadata=metadata,
        feed=feed,
        eval_batch_size=eval_batch_size,
        params=params,
        eval_fn=train_step.jit_eval_step(train_step.make_eval_step(task), planned.shardings, mesh),
    )
