"""The training loop keeps the eval outputs of the best step it evaluated, by the task's main
metric, the way the checkpoint manager picks the best checkpoint: strictly better replaces,
equal keeps the earlier step."""

import math
import types

from bert_jax.checkpoint import manager
from bert_jax.trainer import loop


def kept_steps(values: list[float], higher_is_better: bool) -> int | None:
    task = types.SimpleNamespace(main_metric="f1", higher_is_better=higher_is_better)
    kept = None
    for step, value in enumerate(values, start=1):
        kept = loop._better(kept, task, step, {"f1": value, "loss": 1.0}, {"dev": [step]})
    assert kept is None or kept.outputs == {"dev": [kept.step]}
    return kept and kept.step


def test_the_kept_step_is_the_one_the_checkpoint_manager_keeps():
    for values in ([0.1, 0.5, 0.3], [0.5, 0.5, 0.2], [0.3, 0.2, 0.2, 0.9], [0.4]):
        for higher in (True, False):
            scored = dict(enumerate(values, start=1))
            expected = manager.Best("f1", higher).pick(scored)
            assert kept_steps(values, higher) == expected, (values, higher)


def test_no_metric_or_a_non_finite_value_keeps_nothing():
    assert kept_steps([math.nan, math.inf], True) is None
    task = types.SimpleNamespace(main_metric=None, higher_is_better=True)
    assert loop._better(None, task, 1, {"f1": 0.5}, {}) is None
