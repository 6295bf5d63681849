"""What an evaluation metric is worth without learning anything: the score of always giving the
most frequent answer of the evaluation split itself.

A task's `baselines()` maps an evaluation metric's name (as the loop reports it: `metric`, or
`split/metric` with several splits) to (value, what the baseline is), for the end-of-run summary
to show beside the final score. The counts are taken over the evaluation batches this process
holds (every row on one host; each host's own rows on several).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

Baselines = dict[str, tuple[float, str]]


def most_frequent(values: np.ndarray, weights: np.ndarray) -> tuple[int, float]:
    """(the most frequent value, its share) among the entries with weight > 0; ties go to the
    smallest value. (0, 0.0) when no entry counts."""
    kept = np.asarray(values)[np.asarray(weights) > 0].astype(np.int64).ravel()
    if not kept.size:
        return 0, 0.0
    found, counts = np.unique(kept, return_counts=True)
    best = int(np.argmax(counts))
    return int(found[best]), float(counts[best] / kept.size)


def pretraining(batches: Iterable[dict], nsp: bool = True, token_text=None) -> Baselines:
    """Unigram MLM accuracy (predicting the most frequent masked token everywhere) and, with
    NSP, the share of the majority NSP label, over held-out pretraining batches. `token_text`
    (id -> text) names the token in the description."""
    targets, target_weights, labels, label_weights = [], [], [], []
    for batch in batches:
        targets.append(np.asarray(batch["mlm_ids"]).ravel())
        target_weights.append(np.asarray(batch["mlm_weights"]).ravel())
        labels.append(np.asarray(batch["nsp_label"]).ravel())
        rows = batch.get("example_weights", np.ones(len(labels[-1]), np.float32))
        label_weights.append(np.asarray(rows).ravel())
    if not targets:
        return {}
    token, share = most_frequent(np.concatenate(targets), np.concatenate(target_weights))
    shown = repr(token_text(token)) if token_text else f"token {token}"
    found = {"mlm_accuracy": (share, f"unigram: always {shown}")}
    if nsp:
        label, share = most_frequent(np.concatenate(labels), np.concatenate(label_weights))
        name = "IsNext" if label == 0 else "NotNext"
        found["nsp_accuracy"] = (share, f"majority label {name}")
    return found


def majority_class(
    splits: dict[str, Iterable[dict]],
    metrics: dict,
    label_names: tuple[str, ...] | None = None,
) -> Baselines:
    """Every metric in `metrics` (name -> fn(predictions, labels)) of predicting each split's
    most frequent label for all its rows, from evaluation batches holding `labels` and
    `example_weights`. Splits without a labelled row are left out."""
    found: Baselines = {}
    for split, batches in splits.items():
        batches = list(batches)
        if not batches:
            continue
        labels = np.concatenate([np.asarray(b["labels"]).ravel() for b in batches])
        weights = np.concatenate([np.asarray(b["example_weights"]).ravel() for b in batches])
        labelled = (weights > 0) & (labels >= 0)
        if not labelled.any():
            continue
        label, _ = most_frequent(labels, labelled)
        gold = labels[labelled].astype(np.int64)
        name = label_names[label] if label_names else str(label)
        for metric, score in metrics.items():
            key = f"{split}/{metric}" if len(splits) > 1 else metric
            found[key] = (float(score(np.full_like(gold, label), gold)), f"majority class {name}")
    return found
