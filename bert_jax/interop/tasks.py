"""Fine-tuned task models (`bert_jax.model.heads.TASK_MODELS`) <-> their transformers classes.

Each task model keeps the encoder under `bert` and one dense head whose name transformers uses
too; only the head's layout changes ([in, out] kernels become PyTorch's [out, in]). The class,
the pooler it needs and the config fields it reads (num_labels, id2label, label2id, problem_type)
are in the table below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import flax.linen as nn
import numpy as np

from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig


@dataclasses.dataclass(frozen=True)
class TaskHead:
    architecture: str  # the transformers class
    head: str  # the head's name, ours and transformers' alike
    pooler: bool  # whether the class runs BERT's pooler
    labelled: bool  # whether the outputs are classes (id2label) rather than scores per position


TASK_HEADS = {
    "classification": TaskHead("BertForSequenceClassification", "classifier", True, True),
    "token_classification": TaskHead("BertForTokenClassification", "classifier", False, True),
    "span": TaskHead("BertForQuestionAnswering", "qa_outputs", False, False),
    "multiple_choice": TaskHead("BertForMultipleChoice", "classifier", True, False),
}


def task_head(task: str) -> TaskHead:
    if task not in TASK_HEADS:
        raise UserError(f"unknown task {task!r}; one of {', '.join(TASK_HEADS)}")
    return TASK_HEADS[task]


def architecture(task: str) -> str:
    return task_head(task).architecture


def detect(params: Mapping) -> str | None:
    """The task a params tree can only be (None for pretraining params or when ambiguous:
    sequence and token classification heads have the same shape)."""
    if "qa_outputs" in params:
        return "span"
    if "classifier" in params:
        width = np.shape(nn.unbox(params["classifier"]["kernel"]))[-1]
        return "multiple_choice" if width == 1 and "pooler" in params.get("bert", {}) else None
    return None


def export_head(
    task: str, params: Mapping, config: BertConfig, labels: list[str] | None
) -> tuple[dict[str, np.ndarray], dict]:
    """(HF-named head weights, config.json fields) of a task model's params. Refuses a model
    that lacks the head or the pooler its class needs, and labels that do not fit the head."""
    spec = task_head(task)
    if spec.head not in params:
        raise UserError(
            f"task {task} needs a {spec.head!r} head; the params have {', '.join(sorted(params))}"
        )
    encoder = params.get("bert", {})
    if spec.pooler and "pooler" not in encoder:
        raise UserError(f"task {task} ({spec.architecture}) needs the pooler; the params lack it")
    head = nn.unbox(params[spec.head])
    kernel = np.asarray(head["kernel"], np.float32)
    if kernel.shape[0] != config.hidden_size:
        raise UserError(
            f"{spec.head} kernel {kernel.shape} does not take hidden size {config.hidden_size}"
        )
    state = {
        f"{spec.head}.weight": np.ascontiguousarray(kernel.T),
        f"{spec.head}.bias": np.asarray(head["bias"], np.float32),
    }
    extra: dict = {}
    if spec.labelled:
        count = kernel.shape[1]
        labels = list(labels) if labels else [f"LABEL_{i}" for i in range(count)]
        if len(labels) != count:
            raise UserError(f"{len(labels)} labels given for a head with {count} outputs")
        extra = {
            "num_labels": count,
            "id2label": {str(i): name for i, name in enumerate(labels)},
            "label2id": {name: i for i, name in enumerate(labels)},
        }
        if task == "classification" and count == 1:
            extra["problem_type"] = "regression"
    return state, extra


def encoder_params(task: str, params: Mapping) -> dict:
    """The `bert` subtree as the task's class holds it (without a pooler it does not run)."""
    encoder = dict(params["bert"])
    if not task_head(task).pooler:
        encoder.pop("pooler", None)
    return {"bert": encoder}
