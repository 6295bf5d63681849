"""GLUE metrics against scikit-learn and scipy (the references GLUE's own scorer uses), on random
fixtures of many sizes and on the degenerate cases where each reference has a defined answer."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from bert_jax.tasks.metrics import (
    METRICS,
    accuracy,
    average_ranks,
    f1,
    matthews,
    pearson,
    spearman,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference")
stats = pytest.importorskip("scipy.stats", reason="scipy is the reference")

SIZES = [1, 2, 3, 5, 10, 37, 100, 257, 500]
SEEDS = range(8)


def _quiet(reference, *args, **kwargs):
    """The reference's value without its warnings for undefined cases (constant input)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reference(*args, **kwargs)


def _same(ours: float, reference: float) -> bool:
    if math.isnan(reference):
        return math.isnan(ours)
    return ours == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_classification_metrics_match_sklearn(size):
    for seed in SEEDS:
        rng = np.random.default_rng(seed * 1000 + size)
        positive_rate = rng.uniform(0.05, 0.95)
        labels = (rng.random(size) < positive_rate).astype(np.int64)
        predictions = np.where(rng.random(size) < 0.7, labels, 1 - labels)
        assert _same(
            accuracy(predictions, labels), sklearn_metrics.accuracy_score(labels, predictions)
        )
        assert _same(f1(predictions, labels), _quiet(sklearn_metrics.f1_score, labels, predictions))
        assert _same(
            matthews(predictions, labels),
            _quiet(sklearn_metrics.matthews_corrcoef, labels, predictions),
        )


@pytest.mark.parametrize("size", SIZES)
def test_three_class_matthews_matches_sklearn(size):
    # GLUE's diagnostic set (AX) is scored with the multi-class coefficient.
    for seed in SEEDS:
        rng = np.random.default_rng(seed + 7 * size)
        labels = rng.integers(0, 3, size)
        predictions = np.where(rng.random(size) < 0.5, labels, rng.integers(0, 3, size))
        reference = _quiet(sklearn_metrics.matthews_corrcoef, labels, predictions)
        assert _same(matthews(predictions, labels), reference)


@pytest.mark.parametrize("size", SIZES)
def test_correlations_match_scipy(size):
    for seed in SEEDS:
        rng = np.random.default_rng(seed + 31 * size)
        x = rng.normal(size=size)
        y = 0.6 * x + rng.normal(size=size)
        if size < 2:  # scipy's pearsonr refuses fewer than two values; there is no r
            assert math.isnan(pearson(x, y))
        else:
            assert _same(pearson(x, y), float(stats.pearsonr(x, y).statistic))
        assert _same(spearman(x, y), float(_quiet(stats.spearmanr, x, y).statistic))


def test_matthews_degenerate_cases():
    ones = np.ones(6, dtype=int)
    mixed = np.array([1, 0, 1, 1, 0, 0])
    for predictions, labels in [(ones, mixed), (mixed, ones), (ones, ones), ([1], [1]), ([0], [1])]:
        reference = _quiet(sklearn_metrics.matthews_corrcoef, labels, predictions)
        assert reference == 0.0
        assert matthews(predictions, labels) == 0.0


def test_matthews_hand_worked():
    # tp=2 tn=1 fp=1 fn=0: (2*1 - 1*0) / sqrt(3 * 2 * 2 * 1) = 2 / sqrt(12)
    assert matthews([1, 1, 1, 0], [1, 1, 0, 0]) == pytest.approx(2 / math.sqrt(12))
    assert matthews([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0
    assert matthews([0, 1, 0, 1], [1, 0, 1, 0]) == -1.0


def test_f1_without_positives_or_hits():
    assert f1([0, 0, 0], [0, 0, 0]) == 0.0  # no positive anywhere
    assert f1([1, 1, 0], [0, 0, 1]) == 0.0  # positives, none true
    assert f1([0, 0], [1, 1]) == 0.0
    for predictions, labels in [([0, 0, 0], [0, 0, 0]), ([1, 1, 0], [0, 0, 1])]:
        assert _quiet(sklearn_metrics.f1_score, labels, predictions) == 0.0
    # tp=1 fp=1 fn=1: 2 / (2 + 1 + 1)
    assert f1([1, 1, 0, 0], [1, 0, 1, 0]) == 0.5


def _independent_ranks(values) -> np.ndarray:
    """Rank by counting: 1 + the number of smaller values + half the number of other equal ones."""
    values = list(values)
    return np.array(
        [1 + sum(w < v for w in values) + (sum(w == v for w in values) - 1) / 2 for v in values]
    )


def test_spearman_with_many_ties():
    for seed in range(20):
        rng = np.random.default_rng(seed)
        size = int(rng.integers(3, 200))
        x = rng.integers(0, 4, size)  # four distinct values: ties everywhere
        y = rng.integers(0, 3, size) + (x > 1)
        assert average_ranks(x) == pytest.approx(_independent_ranks(x))
        by_hand = np.corrcoef(_independent_ranks(x), _independent_ranks(y))[0, 1]
        ours = spearman(x, y)
        if np.isnan(by_hand):
            assert math.isnan(ours)
        else:
            assert ours == pytest.approx(by_hand, abs=1e-12)
        assert _same(ours, float(_quiet(stats.spearmanr, x, y).statistic))


def test_ranks_hand_worked():
    assert average_ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert average_ranks([3.0, 3.0, 3.0]).tolist() == [2.0, 2.0, 2.0]


def test_constant_input_gives_nan_correlations():
    assert math.isnan(pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4]))
    assert math.isnan(float(_quiet(stats.pearsonr, [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]).statistic))


def test_perfect_correlation_stays_within_one():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.normal(size=int(rng.integers(2, 500))) * 10.0 ** rng.integers(-3, 4)
        scale = rng.uniform(0.1, 100)
        for r in (pearson(x, scale * x + 1), -pearson(x, -scale * x)):
            assert r == pytest.approx(1.0, abs=1e-12)
            assert r <= 1.0
    assert spearman(x, x**3) == 1.0


def test_shape_errors():
    with pytest.raises(ValueError, match="one length"):
        accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="at least one"):
        f1([], [])


def test_registry():
    expected = {"accuracy": accuracy, "f1": f1, "matthews": matthews}
    expected |= {"pearson": pearson, "spearman": spearman}
    assert expected == METRICS
    assert all(isinstance(METRICS[name]([1, 0, 1], [1, 1, 0]), float) for name in METRICS)
