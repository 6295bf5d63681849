"""A fine-tuned GLUE run rebuilt from its workdir: `open_run(workdir)`.

Everything comes from what the run stored with its checkpoints: the task, the architecture, the
vocabulary, the label order and the whole run config (`bert_jax/checkpoint/metadata.py`). No
training data is read and no optimizer is built, so a run can be evaluated or used to predict
where only its workdir (and the vocabulary it names) is at hand.

The step is the best one by the task's main metric (what `Checkpointer.best_step` picks, read
here from the stored metrics without opening a checkpoint manager, which would install a
SIGTERM handler and clean up a live run's temporary saves), the latest one when no step has the
metric, or the one asked for. Its params are read to the host and placed with this process's
shardings, so the run's mesh need not be the one evaluating it.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import jax
import ml_collections
import numpy as np

from bert_jax import paths, sharding
from bert_jax.checkpoint import init_from, manager
from bert_jax.checkpoint import metadata as layout
from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig
from bert_jax.tasks import glue, sentence_batches
from bert_jax.tasks.classification import Predictions, gather_predictions
from bert_jax.tasks.glue_readers import Example
from bert_jax.tasks.glue_tasks import GlueTask, glue_task
from bert_jax.tasks.text_features import Features, encode_pairs
from bert_jax.trainer import loop
from bert_jax.trainer import state as train_state
from bert_jax.trainer import step as train_step


def warn(text: str) -> None:
    """A note for the user on stderr (process 0 speaks)."""
    if jax.process_index() == 0:
        print(text, file=sys.stderr, flush=True)


@dataclasses.dataclass
class FinetunedRun:
    """One step of a fine-tuned run, its params on this process's mesh."""

    workdir: paths.Path  # where the run's outputs go (the folder holding checkpoints/)
    config: ml_collections.ConfigDict  # the run's config (data_dir replaced when asked)
    spec: GlueTask
    task: glue.GlueFinetune
    step: int
    step_dir: paths.Path
    metadata: dict
    feed: sharding.HostFeed
    eval_batch_size: int
    params: object
    eval_fn: object

    @property
    def name(self) -> str:
        return self.task.name

    def read_examples(self, split: str, spec: GlueTask | None = None) -> list[Example]:
        """A split's examples from the run's data (`spec`: another task predicted by this
        run, i.e. AX for MNLI)."""
        return glue.read_examples(spec or self.spec, self.config.data, split, warn)

    def encode(self, examples: list[Example]) -> Features:
        return encode_pairs(
            self.task.tokenizer,
            examples,
            self.config.data.max_seq_length,
            self.spec.is_regression,
        )

    def eval_outputs(self, features: Features, desc: str = "eval") -> list[dict[str, np.ndarray]]:
        """What the eval step brings back for every batch of `features` (host numpy), as the
        training loop's evaluation gets them (a collective: every process calls it with the
        same features); a progress bar named `desc` counts the batches."""
        data = self.config.data
        batches = sentence_batches.eval_batches(
            features, self.eval_batch_size, data.pad_multiple, data.max_seq_length, self.feed
        )
        return loop.eval_outputs(self.eval_fn, self.params, batches, self.feed, desc)

    def predict(self, features: Features, desc: str = "predict") -> Predictions:
        """Every row's logits, in the order of `features` (a collective, as `eval_outputs`)."""
        if not len(features):
            width = self.task.num_labels
            return Predictions(np.zeros(0, np.int64), np.zeros((0, width)), features.labels)
        return gather_predictions(self.eval_outputs(features, desc))


def pick_step(root: paths.Path, main_metric: str, higher_is_better: bool = True) -> int:
    """The committed step with the best `main_metric` (the earliest among equals), else the
    latest step."""
    steps = layout.committed_steps(root)
    if not steps:
        raise UserError(f"no bert-jax checkpoint in {root}")
    best = (
        manager.best_step(root, manager.Best(main_metric, higher_is_better))
        if main_metric
        else None
    )
    return steps[-1] if best is None else best


def _glue_spec(metadata: dict, where: paths.Path) -> GlueTask:
    task = metadata.get("task", "pretraining")
    if task == "pretraining":
        raise UserError(
            f"{where} holds a pretraining run, not a fine-tuned one: fine-tune it first "
            f"(bert-jax finetune --config=configs/glue.py:TASK --config.init_from={where})"
        )
    if not str(task).startswith("glue/"):
        raise UserError(f"{where} was fine-tuned for {task}; only GLUE runs are handled here")
    if not metadata.get("run_config"):
        raise UserError(f"{where}: the checkpoint metadata has no run_config")
    return glue_task(str(task).removeprefix("glue/"))


def _tokenizer(metadata: dict, config, where: paths.Path):
    from bert_jax.text.load import load_tokenizer

    vocab = metadata.get("vocab") or config.data.get("vocab")
    if not vocab:
        raise UserError(f"{where}: the checkpoint records no vocabulary (data.vocab)")
    try:
        tokenizer = load_tokenizer(vocab, lowercase=metadata.get("lowercase"))
    except UserError as e:
        raise UserError(f"the vocabulary {where} was fine-tuned with: {e}") from None
    recorded = metadata.get("vocab_fingerprint")
    if recorded and recorded != tokenizer.fingerprint:
        raise UserError(
            f"vocabulary {tokenizer.path} is not the one {where} was fine-tuned with "
            "(fingerprints differ: the file changed, or another casing)"
        )
    return tokenizer


def evaluation_mesh(config):
    """The run's mesh where it fits these devices; else data parallel over all of them."""
    try:
        return sharding.make_mesh(config.mesh)
    except UserError as e:
        warn(f"note: the run's mesh does not fit here ({e}); using data parallelism")
        fallback = {**config.mesh.to_dict(), "data": -1, "fsdp": 1, "tensor": 1}
        fallback.update(dcn_data=-1, dcn_fsdp=1, dcn_tensor=1)
        return sharding.make_mesh(ml_collections.ConfigDict(fallback))


def evaluation_batch_size(config, mesh) -> int:
    """The run's evaluation batch, rounded up to the batch shards of this mesh (padding rows
    weigh nothing, so the metrics do not change)."""
    t = config.train
    size = t.eval_batch_size or t.batch_size // t.accum_steps
    shards = sharding.batch_shards(mesh)
    return shards * math.ceil(size / shards)


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a workdir's latest checkpoint says about its run (read without JAX)."""

    root: paths.Path  # the checkpoints directory
    workdir: paths.Path
    metadata: dict
    spec: GlueTask


def run_info(workdir: paths.PathLike) -> RunInfo:
    """The fine-tuned GLUE run in `workdir` (or a step directory of it); a UserError for a
    workdir without checkpoints, a pretraining run or another task."""
    root, latest = layout.resolve(workdir)
    metadata = layout.read_metadata(root / str(latest))
    return RunInfo(root, root.parent, metadata, _glue_spec(metadata, root.parent))


def open_run(
    workdir: paths.PathLike,
    *,
    config: ml_collections.ConfigDict | None = None,
    data_dir: str | None = None,
    step: int | None = None,
) -> FinetunedRun:
    """The fine-tuned run in `workdir` (or a step directory of it) at `step` (None: the best).

    `config`: the run's config when the caller has it (just after training); None reads the
    one stored with the checkpoint. `data_dir` replaces the run's `data.data_dir`."""
    info = run_info(workdir)
    root, where, spec = info.root, info.workdir, info.spec
    config = ml_collections.ConfigDict(
        config.to_dict() if config is not None else info.metadata["run_config"]
    )
    if data_dir:
        config.data.data_dir = data_dir
    task_metric = glue.main_metric(spec)
    if step is None:
        step = pick_step(root, task_metric)
    elif step not in layout.committed_steps(root):
        steps = " ".join(map(str, layout.committed_steps(root)))
        raise UserError(f"{root} has no checkpoint of step {step} (steps: {steps})")
    step_dir = root / str(step)
    metadata = layout.read_metadata(step_dir)
    stored_labels = metadata.get("labels")
    if stored_labels is not None and tuple(stored_labels) != spec.labels:
        raise UserError(
            f"{step_dir} was trained with labels {stored_labels}, but {spec.name} now has "
            f"{list(spec.labels or ())}: predictions would be misnamed"
        )
    tokenizer = _tokenizer(metadata, config, where)
    task = glue.GlueFinetune(
        spec=spec,
        tokenizer=tokenizer,
        source=None,
        name=f"glue/{spec.name}",
        model_config=BertConfig.from_dict(metadata["model"]),
        num_labels=spec.num_labels,
        metric_names=spec.metrics,
        main_metric=task_metric,
        max_length=config.data.max_seq_length,
    )
    mesh = evaluation_mesh(config)
    planned = train_state.plan(
        lambda: task.init_params(jax.random.PRNGKey(0), task.example_batch()), mesh
    )
    params, report = init_from.load_encoder(
        step_dir, planned.abstract, vocab_fingerprint=tokenizer.fingerprint
    )
    if report.new:
        raise UserError(
            f"{step_dir} lacks weights of the {spec.name} model: {', '.join(report.new[:6])}"
        )
    return FinetunedRun(
        workdir=where,
        config=config,
        spec=spec,
        task=task,
        step=step,
        step_dir=step_dir,
        metadata=metadata,
        feed=sharding.host_feed(mesh),
        eval_batch_size=evaluation_batch_size(config, mesh),
        params=params,
        eval_fn=train_step.jit_eval_step(train_step.make_eval_step(task), planned.shardings, mesh),
    )
