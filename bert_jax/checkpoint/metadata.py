"""The on-disk layout of bert-jax checkpoints, read with nothing but the standard library.

A workdir keeps its checkpoints under `WORKDIR/checkpoints/<step>/`, one Orbax step directory
each, holding the items written by `bert_jax.checkpoint.manager.Checkpointer`:

    state/      train state (params, optimizer state, step, RNG), Orbax array storage
    data/       data-pipeline position (JSON file `data/data`)
    metadata/   model config, vocab fingerprint, layer layout, run config (JSON `metadata/metadata`)
    metrics/    eval metrics at that step, when given (JSON `metrics/metrics`)

Orbax writes each step into `<step>.orbax-checkpoint-tmp...` and renames it to `<step>` only
when every item is on disk, so a directory named by a bare integer is a complete checkpoint and
anything else is an interrupted save that is never read. This module reads those JSON files
without JAX, Orbax, TensorFlow or a device, so `bert-jax checkpoints` lists a workdir at once.
Every path goes through `bert_jax.paths` (etils.epath): a `gs://` workdir reads like a local one.
"""

from __future__ import annotations

import contextlib
import json
import os

from bert_jax import paths
from bert_jax.errors import UserError

CHECKPOINTS_SUBDIR = "checkpoints"
STATE_ITEM, DATA_ITEM, METADATA_ITEM, METRICS_ITEM = "state", "data", "metadata", "metrics"
TMP_MARKER = ".orbax-checkpoint-tmp"
FORMAT_VERSION = 1

# BertConfig fields that define the function the weights compute: a checkpoint whose values
# differ here belongs to another model. The remaining fields (dropout, dtype, remat, attention
# kernel, scan_layers) are run-time choices and may change between runs of one model;
# scan_layers changes the parameter layout and is checked on its own.
ARCHITECTURE_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_layers",
    "num_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "gelu_approximate",
)


def checkpoint_dir(workdir: paths.PathLike) -> paths.Path:
    """Where a workdir keeps its step directories."""
    return paths.path(workdir) / CHECKPOINTS_SUBDIR


def _entries(root: paths.Path) -> list[paths.Path]:
    return list(root.iterdir()) if root.is_dir() else []


def committed_steps(root: paths.PathLike) -> list[int]:
    """Steps with a complete checkpoint under `root`, ascending."""
    return sorted(
        int(p.name) for p in _entries(paths.path(root)) if p.name.isdigit() and p.is_dir()
    )


def interrupted_saves(root: paths.PathLike) -> list[str]:
    """Names of step directories whose save never finished (ignored, removed on the next run)."""
    return sorted(p.name for p in _entries(paths.path(root)) if TMP_MARKER in p.name)


def resolve(path: paths.PathLike) -> tuple[paths.Path, int]:
    """(checkpoints root, step) for a workdir (its latest step), a workdir's `checkpoints/`
    directory (latest step), or one step directory, local or `gs://`."""
    try:
        path = paths.check_accessible(path)
    except UserError as e:
        raise UserError(f"checkpoint {e}") from None
    if path.name.isdigit() and (path / METADATA_ITEM).is_dir():
        return path.parent, int(path.name)
    if TMP_MARKER in path.name:
        raise UserError(f"{path} is an interrupted save, not a checkpoint")
    for root in (path / CHECKPOINTS_SUBDIR, path):
        steps = committed_steps(root)
        if steps:
            return root, steps[-1]
    partial = interrupted_saves(path / CHECKPOINTS_SUBDIR) + interrupted_saves(path)
    detail = f" (only interrupted saves: {', '.join(partial)})" if partial else ""
    raise UserError(f"no bert-jax checkpoint in {path}{detail}")


def _read_json(file: paths.Path, what: str):
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        raise UserError(f"checkpoint is missing its {what}: {file}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"checkpoint {what} is corrupt: {file}: {e}") from None


def read_metadata(step_dir: paths.Path) -> dict:
    """Model config, vocab fingerprint, layer layout and run config stored with one step."""
    return _read_json(step_dir / METADATA_ITEM / METADATA_ITEM, "metadata")


def read_data_state(step_dir: paths.Path) -> dict | None:
    file = step_dir / DATA_ITEM / DATA_ITEM
    return _read_json(file, "data-pipeline state") if file.exists() else None


def read_metrics(step_dir: paths.Path) -> dict | None:
    file = step_dir / METRICS_ITEM / METRICS_ITEM
    return _read_json(file, "metrics") if file.exists() else None


def size_bytes(directory: paths.PathLike) -> int:
    """Bytes stored under `directory` (file sizes; what `du --apparent-size` counts)."""
    text = os.fspath(paths.path(directory))
    if paths.is_remote(text):
        # One listing request for the whole tree (epath's walk drops the gs:// scheme from the
        # directories it yields, and would stat each object separately).
        import fsspec

        return int(fsspec.filesystem(text.split("://", 1)[0]).du(text))
    total = 0
    for dirpath, _, files in os.walk(text):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # removed by a concurrent cleanup
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def model_differences(stored: dict, current: dict) -> list[str]:
    """`field: stored -> current` for each architecture field that differs."""
    return [
        f"{name} {stored.get(name)!r} -> {current.get(name)!r}"
        for name in ARCHITECTURE_FIELDS
        if stored.get(name) != current.get(name)
    ]


def check_same_model(stored: dict, current: dict, where: str) -> None:
    """Refuse to continue a run from a checkpoint of another model, naming the fields.

    `stored` and `current` are checkpoint metadata dicts (see `Checkpointer`)."""
    differences = model_differences(stored.get("model", {}), current.get("model", {}))
    if differences:
        raise UserError(
            f"{where} holds checkpoints of another model (checkpoint -> this run): "
            + "; ".join(differences)
        )
    if bool(stored.get("scan_layers")) != bool(current.get("scan_layers")):
        raise UserError(
            f"{where} was written with scan_layers={bool(stored.get('scan_layers'))} and this "
            f"run has scan_layers={bool(current.get('scan_layers'))}; full-state resume keeps the "
            "layer layout (set model.scan_layers to match, or start from it with init_from)"
        )
    mine, theirs = current.get("vocab_fingerprint"), stored.get("vocab_fingerprint")
    if mine and theirs and mine != theirs:
        raise UserError(
            f"{where} was trained with another vocabulary (fingerprint {theirs} -> {mine})"
        )


def run_vocab(metadata: dict, root: paths.Path) -> str | None:
    """The vocabulary the run trained with, where it can still be found: `data.vocab` of its
    config, or the tokenizer path recorded by `prepare` in its shards' metadata.json."""
    if metadata.get("vocab"):  # fine-tuning runs record the tokenizer they used
        return metadata["vocab"]
    data = (metadata.get("run_config") or {}).get("data") or {}
    if data.get("vocab"):
        return data["vocab"]
    data_dir = data.get("data_dir")
    if data.get("demo_corpus") and not data.get("synthetic"):
        data_dir = paths.join(root.parent, "demo_data", "shards")
    if not data_dir:
        return None
    from bert_jax.data import shards

    try:
        recorded = (shards.read_metadata(data_dir).get("tokenizer") or {}).get("path")
    except UserError:
        return None
    return recorded if recorded and paths.path(recorded).exists() else None
