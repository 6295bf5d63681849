"""The best checkpoint by a metric survives retention (`Checkpointer(best=Best(...))`), in the
session that saved it and in a later one that only reads the stored metrics."""

import jax
import pytest

from bert_jax.checkpoint import manager as checkpointing
from tests.checkpoint import fixtures as fx

BEST_F1 = checkpointing.Best("f1")
SCORES = {1: 0.50, 2: 0.90, 3: 0.70, 4: 0.60}  # step -> f1: the best is neither first nor last


@pytest.fixture(scope="module")
def state():
    return jax.device_put(fx.random_state(fx.pretraining()))


def save(workdir, state, steps, best=BEST_F1):
    with checkpointing.Checkpointer(workdir, fx.options(keep_last=1), fx.metadata(), best) as c:
        for step in steps:
            assert c.save(step, state, {}, metrics={"f1": SCORES[step], "loss": 1.0})
            c.wait()
        return c.all_steps(), c.best_step()


def test_the_best_step_is_kept_besides_the_last(tmp_path, state):
    kept, best = save(tmp_path, state, [1, 2, 3])
    assert best == 2 and kept == [2, 3]


def test_a_later_session_keeps_the_best_from_the_stored_metrics(tmp_path, state):
    save(tmp_path, state, [1, 2, 3])
    kept, best = save(tmp_path, state, [4])
    assert best == 2 and kept == [2, 4]


def test_lower_is_better_and_ties_go_to_the_earliest():
    assert checkpointing.Best("loss", higher_is_better=False).pick({3: 0.2, 5: 0.1, 7: 0.1}) == 5
    assert checkpointing.Best("f1").pick({4: 0.8, 2: 0.8, 6: 0.5}) == 2
    assert checkpointing.Best("f1").pick({}) is None


def test_without_a_metric_only_the_last_ones_are_kept(tmp_path, state):
    kept, best = save(tmp_path, state, [1, 2, 3], best=None)
    assert best is None and kept == [3]
