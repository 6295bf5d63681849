"""The task a config trains, built without its data, and the global batch its step takes.

Pretraining plans the task `bert-jax pretrain` builds, through the same builder, on synthetic
batches of the configured shape (`data.synthetic`: nothing is read); the vocabulary is
`model.vocab_size`, else BERT's 30,522 WordPiece ids. Fine-tuning (a config with a `task`)
plans its family's task class with the architecture of `init_from` (or `model.size`), its
head, and a step plan of the configured length: the data would only decide the step count and,
for NER, the tag count, neither of which a plan measures. Every batch is planned at
`data.max_seq_length` tokens, the longest a padded batch gets.
"""

from __future__ import annotations

import numpy as np

from bert_jax.errors import UserError
from bert_jax.tasks.base import StepPlan, Task

# The length of the schedule when the config counts epochs (train.num_steps 0): a plan
# compiles one step, which does not depend on it.
STEPS_WITHOUT_DATA = 1000
# CoNLL-2003's tags as the NER task labels them (O, then B- and I- of PER, ORG, LOC, MISC).
NER_TAG_COUNT = 9


def is_finetuning(config) -> bool:
    return "task" in config


def for_planning(config):
    """The config the plan builds from: a pretraining config switched to synthetic batches of
    its shapes (a copy; `config` is left as it is); a fine-tuning config as it is."""
    if is_finetuning(config):
        return config
    planned = config.copy_and_resolve_references()
    planned.data.synthetic = True
    return planned


def builder(config):
    """The trainer's `BuildTask` for `config` that reads no data (module docstring)."""
    if not is_finetuning(config):
        from bert_jax.tasks import pretraining

        return pretraining.build
    return finetuning_task


def finetuning_task(config, workdir, feed, eval_batch_size: int, warn) -> Task:
    """The fine-tuning task of `config.task` without its data (the trainer's `BuildTask`)."""
    del workdir, feed, eval_batch_size  # nothing is read or fed
    from bert_jax.checkpoint import source as checkpoint_source
    from bert_jax.tasks import glue, registry

    family = registry.family(config.task)
    registry.module(config.task)  # an unknown family: the registry's one-line error
    source = checkpoint_source.describe(config.init_from) if config.init_from else None
    architecture = glue.model_config(config.model, source)
    length = config.data.max_seq_length
    if length > architecture.max_position_embeddings:
        raise UserError(
            f"data.max_seq_length {length} exceeds the position table "
            f"({architecture.max_position_embeddings})"
        )
    steps = StepPlan(config.train.num_steps or STEPS_WITHOUT_DATA, 1)
    common = dict(name=config.task, model_config=architecture, max_length=length, steps=steps)
    if family == "glue":
        from bert_jax.tasks.classification import SequenceClassificationTask

        spec = glue.spec(config)
        return SequenceClassificationTask(
            num_labels=spec.num_labels, metric_names=spec.metrics, main_metric="", **common
        )
    if family == "squad":
        from bert_jax.tasks.span import SpanTask

        class PlannedSpan(SpanTask):
            """SQuAD's head and loss; a plan never evaluates (SQuAD's decoder needs the data)."""

            def evaluate(self, split, outputs):
                raise NotImplementedError("a planned task has no evaluation data")

        return PlannedSpan(**common)
    if family == "ner":
        from bert_jax.tasks.token_classification import TokenClassificationTask

        tags = tuple(f"tag{i}" for i in range(NER_TAG_COUNT))
        return TokenClassificationTask(labels=tags, main_metric="", **common)
    from bert_jax.tasks import swag_data
    from bert_jax.tasks.choice import MultipleChoiceTask

    return MultipleChoiceTask(num_choices=swag_data.NUM_CHOICES, **common)


def train_batch(task: Task, rows: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """name -> (shape, dtype) of the global training batch of `rows` examples: the model's
    inputs as `task.example_batch()` lays them out, and what the task's loss reads beside them
    (the fields its data stream adds to every batch)."""
    example = task.example_batch()
    batch = {name: ((rows, *x.shape[1:]), x.dtype) for name, x in example.items()}
    kind = task.model_kind
    if kind == "pretraining":  # the example batch is the whole layout
        return batch
    length = example["input_ids"].shape[-1]
    regression = kind == "classification" and task.num_labels == 1
    labels = {
        "classification": ((rows,), np.float32 if regression else np.int32),
        "multiple_choice": ((rows,), np.int32),
        "span": ((rows, 2), np.int32),  # start and end token
        "token_classification": ((rows, length), np.int32),
    }
    if kind not in labels:
        raise ValueError(f"no planned batch layout for model kind {kind!r}")
    batch["labels"] = labels[kind]
    if kind == "token_classification":
        batch["label_weights"] = ((rows, length), np.float32)
    batch["example_weights"] = ((rows,), np.float32)
    batch["rows"] = ((rows,), np.int32)
    return {name: (shape, np.dtype(dtype)) for name, (shape, dtype) in batch.items()}
