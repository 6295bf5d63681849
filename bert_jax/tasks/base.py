"""The Task interface: what differs between pretraining and each fine-tuning job.

The trainer (`bert_jax/trainer/`) owns the mesh, the sharded state, the optimizer, gradient
accumulation, the jitted steps, evaluation scheduling, checkpoints and reporting, and never
looks inside a batch. A task supplies:

  model        the Flax module (the encoder is always its `bert` subtree) and its BertConfig
  batches      `data`: the training stream (resumable) and the evaluation splits, as host
               batches of numpy arrays for this process's rows
  loss         `loss_sums` (float32 scalar sums over a batch, so micro-batches and devices add
               up exactly) and `loss` (the sums over normalisers of the WHOLE batch)
  metrics      `train_summary` (host: means from the summed values) and, for evaluation,
               `eval_outputs` (device: what to bring back per batch) and `evaluate` (host:
               the task's official metrics from everything brought back)
  plan         the step count and evaluation interval, from the config and the data

Everything a task computes on the device is a pure function of (params, batch).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Iterator

import flax.linen as nn
import jax
import numpy as np

from bert_jax.model.config import BertConfig


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """How long a run is and when it evaluates, worked out once from the config and the data."""

    num_steps: int
    eval_every_steps: int
    steps_per_epoch: int | None = None  # fine-tuning: optimizer steps per pass over the data


class TaskData(abc.ABC):
    """A task's input for one process: host batches holding this process's rows."""

    @abc.abstractmethod
    def train(self, state: dict | None) -> Iterator[dict]:
        """The training stream, from a saved position (None: the beginning)."""

    @abc.abstractmethod
    def stream_state(self, stream) -> dict:
        """The position of `stream` to checkpoint (a collective: every process calls it)."""

    @abc.abstractmethod
    def evaluation(self) -> dict[str, Iterable[dict]]:
        """Evaluation split name -> its host batches (the same batches every time)."""

    @property
    def has_eval(self) -> bool:
        return bool(self.evaluation_splits)

    @property
    @abc.abstractmethod
    def evaluation_splits(self) -> tuple[str, ...]: ...


class Task(abc.ABC):
    """One training job's model, batches, loss and metrics. See the module docstring."""

    name: str  # "pretraining", "glue/mrpc", ...
    model_kind: str  # the model's kind in `bert_jax.model.heads.TASK_MODELS` (export uses it)
    model_config: BertConfig
    model: nn.Module
    data: TaskData
    # Evaluation metric the best checkpoint is chosen by ("" keeps none), and its direction.
    main_metric: str = ""
    higher_is_better: bool = True
    # init_from takes only the encoder (the `bert` subtree): fine-tuning heads start fresh.
    init_encoder_only: bool = True

    # -- the model -------------------------------------------------------------------------

    @abc.abstractmethod
    def example_batch(self) -> dict[str, np.ndarray]:
        """One row of the training layout (zeros): the shapes the params are built from."""

    @abc.abstractmethod
    def model_inputs(self, batch: dict) -> dict:
        """Keyword arguments of `model` for `batch` (`deterministic` is added by the caller)."""

    def apply(self, params, batch: dict, rng, deterministic: bool):
        return self.model.apply(
            {"params": params},
            **self.model_inputs(batch),
            deterministic=deterministic,
            rngs=None if deterministic else {"dropout": rng},
        )

    def init_params(self, rng, batch: dict):
        """Boxed params (logical axis names kept) for `batch`'s shapes."""
        return self.model.init({"params": rng}, **self.model_inputs(batch), deterministic=True)[
            "params"
        ]

    # -- the loss (inside jit) -------------------------------------------------------------

    @abc.abstractmethod
    def loss_sums(self, outputs, batch: dict) -> dict[str, jax.Array]:
        """Float32 scalar sums over the batch's real rows (padding rows weigh 0)."""

    @abc.abstractmethod
    def normalisers(self, batch: dict) -> dict[str, jax.Array]:
        """Divisors taken from the whole batch (before any micro-batch split), each >= 1."""

    @abc.abstractmethod
    def loss(self, sums: dict, normalisers: dict) -> jax.Array: ...

    # -- metrics (host) --------------------------------------------------------------------

    @abc.abstractmethod
    def train_summary(self, sums: dict[str, float]) -> dict[str, float]:
        """Means (with `loss`) from the sums of `loss_sums` added over the logged steps."""

    def eval_outputs(self, outputs, batch: dict) -> dict[str, jax.Array]:
        """What an evaluation step brings back for one batch (default: the loss sums)."""
        return self.loss_sums(outputs, batch)

    @abc.abstractmethod
    def evaluate(self, split: str, outputs: list[dict[str, np.ndarray]]) -> dict[str, float]:
        """The split's metrics from the `eval_outputs` of all its batches (host numpy)."""

    # -- the run ---------------------------------------------------------------------------

    @abc.abstractmethod
    def plan(self, config) -> StepPlan:
        """Steps and evaluation interval from the run's config (and the data's size)."""

    @abc.abstractmethod
    def step_flops(self, batch: dict) -> float:
        """Model FLOPs of one training step on `batch` (global shapes), for MFU."""

    def checkpoint_metadata(self) -> dict:
        """What every checkpoint of this task records beside the state."""
        return {
            "task": self.name,
            "model_kind": self.model_kind,
            "model": self.model_config.to_dict(),
            "scan_layers": self.model_config.scan_layers,
        }

    def describe(self) -> str:
        """One line for the run's banner."""
        return self.name
