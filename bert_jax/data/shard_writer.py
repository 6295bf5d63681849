"""Step 2 of `prepare`: rank the saved parts' documents by key and write the eval and train shards.

Ranking: documents sorted by (key, part, position). Eval takes the lowest ranks (the first
`eval_documents`, or every key below `eval_fraction` * 2**64, and at least one document when an
eval split was asked for); the train ranks that follow are cut into `num_shards` contiguous ranges
holding about equal numbers of tokens. A part's records are already in key order, so each shard
needs one contiguous byte range from each part. An eval split is never written empty: with no
document to spare there is none, and the metadata says why (`eval_split`).

Also here: the checks that keep `prepare` from mixing or overwriting datasets in one OUTPUT.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from bert_jax import paths, progress
from bert_jax.data import shards, tfrecord
from bert_jax.data.part_store import SavedPart
from bert_jax.errors import UserError

# ---------------------------------------------------------------------------------------------
# What OUTPUT already holds


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _show(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:56] + "..."


def _difference(key: str, old, new) -> str:
    if isinstance(old, list) and isinstance(new, list):  # e.g. input.sources
        pairs = zip(old, new, strict=False)
        first = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(old), len(new)))
        there, now = (_show(x[first]) if first < len(x) else "nothing" for x in (old, new))
        return (
            f"{key}: {len(old)} entries there, {len(new)} now; #{first}: {there} there, {now} now"
        )
    return f"{key}: {_show(old)} there, {_show(new)} now"


def _plan_difference(old: dict, new: dict) -> str:
    old_flat, new_flat = _flatten(old), _flatten(new)
    keys = sorted(set(old_flat) | set(new_flat))
    changed = [k for k in keys if old_flat.get(k) != new_flat.get(k)]
    return "; ".join(_difference(k, old_flat.get(k), new_flat.get(k)) for k in changed[:4])


def check_output(output: str, work: str, plan: dict, tokenizer) -> dict | None:
    """The metadata of a complete dataset made with this same plan, None for an empty or
    resumable OUTPUT; UserError for anything made otherwise."""
    plan = json.loads(json.dumps(plan))
    out = paths.path(output)
    if (out / shards.METADATA_FILE).exists():
        metadata = shards.read_metadata(output)
        if tokenizer is not None:
            shards.check_tokenizer(metadata, tokenizer, what="--vocab")
        if metadata.get("plan") != plan:
            raise UserError(
                f"{output} holds a dataset prepared with a different plan "
                f"({_plan_difference(metadata.get('plan', {}), plan)}); "
                "choose another --output or delete it"
            )
        return metadata
    plan_file = paths.path(work) / "plan.json"
    if plan_file.exists():
        old = json.loads(plan_file.read_text())
        if old != plan:
            raise UserError(
                f"{output} holds an unfinished run with a different plan "
                f"({_plan_difference(old, plan)}); rerun it as it was, or delete {output}"
            )
        return None
    strays = [
        p for split in shards.SPLITS for p in paths.glob(f"{os.fspath(out)}/{split}-*.tfrecord")
    ]
    if strays:
        raise UserError(
            f"{output} holds {len(strays)} shard files but no {shards.METADATA_FILE} nor "
            f"{os.path.basename(work)}/plan.json; choose another --output or delete them"
        )
    return None


# ---------------------------------------------------------------------------------------------
# Ranking


@dataclasses.dataclass
class _Ranking:
    """All saved parts' documents, concatenated in part order, and their global ranks."""

    part_starts: np.ndarray  # [parts + 1] first document of each part in the arrays below
    keys: np.ndarray
    sentences: np.ndarray
    tokens: np.ndarray
    lengths: np.ndarray  # bytes of each record
    rank: np.ndarray  # rank of each document
    order: np.ndarray  # documents by rank


def _rank(parts: list[SavedPart]) -> _Ranking:
    sizes = [len(p.keys) for p in parts]

    def cat(arrays, dtype):
        return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)

    keys = cat([p.keys for p in parts], np.uint64)
    part_of = np.repeat(np.arange(len(parts)), sizes)
    position = cat([np.arange(n) for n in sizes], np.int64)
    order = np.lexsort((position, part_of, keys))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return _Ranking(
        part_starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        keys=keys,
        sentences=cat([p.sentences for p in parts], np.int64),
        tokens=cat([p.tokens for p in parts], np.int64),
        lengths=cat([np.diff(p.offsets) for p in parts], np.int64),
        rank=rank,
        order=order,
    )


def _eval_size(ranking: _Ranking, options) -> tuple[int, str | None]:
    """Documents held out for eval, and why there is no eval split when there is none."""
    total = len(ranking.order)
    if options.eval_documents is not None:
        if options.eval_documents >= total:
            raise UserError(
                f"--eval_documents={options.eval_documents} leaves no training documents: "
                f"the corpus has {total}"
            )
        return options.eval_documents, None if options.eval_documents else "--eval_documents=0"
    if options.eval_fraction == 0:
        return 0, "--eval_fraction=0"
    threshold = np.uint64(min(options.eval_fraction * 2.0**64, 2.0**64 - 1))
    n_eval = int(np.searchsorted(ranking.keys[ranking.order], threshold, side="left"))
    if n_eval:
        return n_eval, None
    # The fraction rounds to nothing on a small corpus: hold out one document, if one can go.
    if total < 2:
        return 0, f"the corpus has {total} document; none can be held out"
    if total - 1 < options.num_shards:
        return 0, (
            f"holding out one of {total} documents would leave too few for "
            f"--num_shards={options.num_shards}"
        )
    return 1, None


def _split_ranges(ranking: _Ranking, options) -> tuple[list[tuple[str, int, int]], str | None]:
    """(file name, first rank, end rank) of the eval file (when there is one) and each train
    shard, and why there is no eval file when there is none."""
    total = len(ranking.order)
    if total == 0:
        raise UserError(
            f"no documents with any tokens in --input={','.join(options.corpus.inputs)} "
            f"(format {options.corpus.format}): the corpus is empty"
        )
    n_eval, no_eval = _eval_size(ranking, options)
    n_train, n_shards = total - n_eval, options.num_shards
    if n_train < n_shards:
        raise UserError(
            f"{n_train} training documents cannot fill --num_shards={n_shards}; "
            f"use --num_shards={n_train} or fewer, or split the corpus into more documents"
        )
    cumulative = np.cumsum(ranking.tokens[ranking.order[n_eval:]])
    targets = cumulative[-1] * np.arange(1, n_shards) / n_shards
    bounds = np.searchsorted(cumulative, targets, side="left") + 1
    # Every shard gets at least one document, even next to a document of a million tokens.
    bounds = np.maximum(bounds, np.arange(1, n_shards))
    bounds = np.minimum(bounds, n_train - n_shards + np.arange(1, n_shards))
    bounds = np.maximum.accumulate(np.concatenate([[0], bounds, [n_train]]))
    ranges = [(shards.shard_name("eval", 0, 1), 0, n_eval)] if n_eval else []
    ranges += [
        (name, n_eval + int(bounds[i]), n_eval + int(bounds[i + 1]))
        for i, name in enumerate(shards.shard_names("train", n_shards))
    ]
    return ranges, no_eval


# ---------------------------------------------------------------------------------------------
# Writing

BATCH_BYTES = 512 << 20  # records held in memory at once: output files are written in batches


def _read_ranks(parts: list[SavedPart], ranking: _Ranking, first: int, end: int) -> dict:
    """{rank: record} for ranks [first, end): one read from each part that has any."""
    records = {}
    for p, part in enumerate(parts):
        part_ranks = ranking.rank[ranking.part_starts[p] : ranking.part_starts[p + 1]]
        a, b = (int(i) for i in np.searchsorted(part_ranks, [first, end]))
        if a == b:
            continue
        offsets = part.offsets
        with paths.path(part.records_path).open("rb") as f:
            f.seek(int(offsets[a]))
            data = f.read(int(offsets[b] - offsets[a]))
        base = int(offsets[a])
        for i in range(a, b):
            records[int(part_ranks[i])] = data[offsets[i] - base : offsets[i + 1] - base]
    return records


def _batches(ranges: list[tuple[str, int, int]], ranking: _Ranking) -> list[list]:
    """Consecutive output files grouped so that each group's records fit in BATCH_BYTES."""
    cumulative = np.concatenate([[0], np.cumsum(ranking.lengths[ranking.order])])
    batches, current, size = [], [], 0
    for item in ranges:
        nbytes = int(cumulative[item[2]] - cumulative[item[1]])
        if current and size + nbytes > BATCH_BYTES:
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += nbytes
    return batches + [current]


def write_shards(options, parts: list[SavedPart]) -> tuple[dict, str | None]:
    """Write the eval and train files not already complete; returns metadata's "splits" (with
    an "eval" entry only when an eval file was written) and why there is no eval split, if so."""
    ranking = _rank(parts)
    ranges, no_eval = _split_ranges(ranking, options)
    names = {name.split("-", 1)[0] for name, _, _ in ranges}
    splits = {
        s: {"files": [], "documents": 0, "sentences": 0, "tokens": 0}
        for s in shards.SPLITS
        if s in names
    }
    bar = progress.bar(total=len(ranges), desc="shards", unit="file", progress=options.progress)
    for batch in _batches(ranges, ranking):
        todo = []
        for name, first, end in batch:
            docs = ranking.order[first:end]
            split = splits[name.split("-", 1)[0]]
            split["files"].append(name)
            split["documents"] += len(docs)
            split["sentences"] += int(ranking.sentences[docs].sum())
            split["tokens"] += int(ranking.tokens[docs].sum())
            # A finished file has exactly the size its records add up to; others are redone.
            final = paths.path(options.output) / name
            size = int(ranking.lengths[docs].sum()) + tfrecord.FRAMING_BYTES * len(docs)
            if final.exists() and final.stat().length == size:
                bar.update(1)
            else:
                todo.append((name, first, end))
        if not todo:
            continue
        records = _read_ranks(parts, ranking, todo[0][1], todo[-1][2])
        for name, first, end in todo:
            tfrecord.write_file(
                paths.path(options.output) / name, (records[r] for r in range(first, end))
            )
            bar.update(1)
    bar.close()
    return splits, no_eval
