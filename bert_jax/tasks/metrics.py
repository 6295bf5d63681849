"""The official GLUE metrics: numpy arrays in, one float out (a fraction, not a percentage).

Each follows the reference the GLUE leaderboard uses (scikit-learn's f1_score and
matthews_corrcoef, scipy's pearsonr and spearmanr), including its answer for degenerate input:
F1 and Matthews are 0.0 where they are undefined (no true positive; a constant column), the
correlations are NaN for constant input or fewer than two examples.
"""

from __future__ import annotations

import numpy as np


def _pair(predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    """Both arguments as 1-D arrays of one length, with at least one element."""
    a, b = np.asarray(predictions), np.asarray(labels)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"metrics need two 1-D arrays of one length, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("metrics need at least one example, got none")
    return a, b


def accuracy(predictions, labels) -> float:
    """Fraction of predictions equal to their label."""
    predictions, labels = _pair(predictions, labels)
    return float(np.mean(predictions == labels))


def f1(predictions, labels) -> float:
    """Binary F1 of the positive class 1: 2 tp / (2 tp + fp + fn); 0.0 without a true positive."""
    predictions, labels = _pair(predictions, labels)
    predicted, actual = predictions == 1, labels == 1
    true_pos = int(np.sum(predicted & actual))
    if true_pos == 0:
        return 0.0
    false_pos = int(np.sum(predicted & ~actual))
    false_neg = int(np.sum(~predicted & actual))
    return 2 * true_pos / (2 * true_pos + false_pos + false_neg)


def matthews(predictions, labels) -> float:
    """Matthews correlation coefficient over any number of classes (Gorodkin's R_K, which is
    the binary MCC for two classes and GLUE's diagnostic R3 for three); 0.0 when either side is
    constant (the denominator is 0)."""
    predictions, labels = _pair(predictions, labels)
    classes, codes = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    k, n = len(classes), len(labels)
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (codes[:n], codes[n:]), 1)
    true_per_class = confusion.sum(axis=1)
    predicted_per_class = confusion.sum(axis=0)
    correct = np.trace(confusion)
    covariance = correct * n - true_per_class @ predicted_per_class
    variance_pred = n * n - predicted_per_class @ predicted_per_class
    variance_true = n * n - true_per_class @ true_per_class
    denominator = variance_pred * variance_true
    if denominator == 0:
        return 0.0
    return float(covariance / np.sqrt(denominator))


def pearson(x, y) -> float:
    """Pearson's r; NaN for constant input or fewer than two values (scipy's answer)."""
    x, y = _pair(x, y)
    x, y = x.astype(np.float64), y.astype(np.float64)
    if x.size < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    norm = np.sqrt(np.dot(dx, dx) * np.dot(dy, dy))  # exact for x == y: sqrt(a * a) == a
    if norm == 0 or not np.isfinite(norm):
        return float("nan")
    # Rounding can carry |r| a hair past 1 for perfectly (anti)correlated data.
    return float(np.clip(np.dot(dx, dy) / norm, -1.0, 1.0))


def average_ranks(values) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing the mean of their ranks."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # Start of each run of equal values in sorted order, and the run each position belongs to.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    run_of = np.repeat(np.arange(len(starts)), ends - starts)
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = (starts + ends + 1)[run_of] / 2.0  # mean of ranks starts+1 .. ends
    return ranks


def spearman(x, y) -> float:
    """Spearman's rho: Pearson's r of the average ranks; NaN for constant input."""
    x, y = _pair(x, y)
    return pearson(average_ranks(x), average_ranks(y))


METRICS = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews": matthews,
    "pearson": pearson,
    "spearman": spearman,
}
