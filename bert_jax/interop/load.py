"""`load_pretrained(path)`: one entry for every checkpoint kind the project reads.

Recognised, in this order: a Hugging Face directory (`config.json` + weights), a Google TF1
checkpoint (a prefix like `.../bert_model.ckpt`, or its directory, with `bert_config.json`),
and a bert-jax Orbax checkpoint (read by `bert_jax.checkpoint.restore.load_params`).
"""

from __future__ import annotations

import importlib

import flax.linen as nn
import jax
import numpy as np

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.interop import hf, layout, names, tf
from bert_jax.model.config import BertConfig


def _checkpointing():
    """The Orbax reader, or None where this build has no `bert_jax.checkpoint.manager`."""
    try:
        module = importlib.import_module("bert_jax.checkpoint.restore")
    except ImportError:
        return None
    return module if hasattr(module, "load_params") else None


def _is_bert_jax(path: paths.Path) -> bool:
    """A bert-jax workdir, its `checkpoints/` directory or one step directory."""
    try:
        from bert_jax.checkpoint import metadata as checkpoint_metadata
    except ImportError:
        return False
    try:
        checkpoint_metadata.resolve(path)
    except UserError:
        return False
    return _checkpointing() is not None


def _load_bert_jax(path: paths.Path) -> tuple[BertConfig, dict, dict]:
    config, params = _checkpointing().load_params(str(path))
    params = layout.unscan_layers(
        jax.tree.map(lambda x: np.asarray(x, np.float32), nn.unbox(params))
    )
    flat = names.flatten(params)
    loaded, missing = [], []
    for rule in names.rules(config.replace(scan_layers=False)):
        (loaded if rule.ours in flat else missing).append(rule.ours)
    encoder_missing = [names.path_name(p) for p in missing if p[:2] in names.ENCODER_PREFIXES]
    if encoder_missing:
        raise UserError(
            f"{path}: params lack {len(encoder_missing)} encoder weights "
            f"({encoder_missing[0]}, ...)"
        )
    unused = sorted(names.path_name(p) for p in set(flat) - set(loaded))
    params = names.unflatten({p: flat[p] for p in loaded})
    report = {
        "format": "bert-jax",
        "source": str(path),
        "loaded": [names.path_name(p) for p in loaded],
        "missing": [names.path_name(p) for p in missing],
        "unused": unused,
        "ignored": [],
    }
    return config, params, report


def require_checkpoint(path: paths.PathLike) -> paths.Path:
    """`path` as a Path once it (or a TF prefix `path.index`) exists; else one line naming it
    (for gs://, with the usual reasons: no credentials, no such bucket)."""
    path = paths.path(path)
    try:
        found = path.exists() or paths.path(f"{path}.index").exists()
    except Exception as e:  # gcsfs/google-auth raise many types; all mean "cannot access"
        raise UserError(paths.describe_error(path, e)) from None
    if not found:
        raise UserError(f"checkpoint not found: {path}")
    return path


def detect_format(path: paths.PathLike) -> str:
    """ "hf", "tf" or "bert-jax" for `path` (local or gs://), or a UserError saying what was
    looked for."""
    path = require_checkpoint(path)
    if hf.is_hf_dir(path):
        return "hf"
    if tf.find_checkpoint(path) is not None:
        return "tf"
    if path.is_dir() and _is_bert_jax(path):
        return "bert-jax"
    if (path / "config.json").is_file():
        raise UserError(
            f"{path}: config.json is there but no weights (looked for {', '.join(hf.WEIGHT_FILES)})"
        )
    if (path / tf.CONFIG_FILE).is_file():
        raise UserError(f"{path}: {tf.CONFIG_FILE} is there but no TF checkpoint (*.index)")
    raise UserError(
        f"{path} is not a Hugging Face directory (config.json + model.safetensors), "
        f"a Google TF checkpoint (bert_model.ckpt.index + {tf.CONFIG_FILE}) "
        "or a bert-jax checkpoint (WORKDIR/checkpoints/STEP)"
    )


def load_pretrained(
    path: paths.PathLike, scan_layers: bool = False
) -> tuple[BertConfig, dict, dict]:
    """(config, BertForPreTraining params as numpy float32, report) from any supported checkpoint.

    The report lists our param paths `loaded` and `missing` (heads the checkpoint lacks: the
    caller decides whether to initialise them fresh), the source's `unused` weights and the
    `ignored` non-weights (buffers, tied copies, optimizer state). `scan_layers` picks the
    returned layout; the config says the same."""
    kind = detect_format(path)
    loader = {"hf": hf.load_hf, "tf": tf.load_tf, "bert-jax": _load_bert_jax}[kind]
    config, params, report = loader(paths.path(path))
    return (
        config.replace(scan_layers=scan_layers),
        layout.to_layout(params, scan_layers),
        report,
    )


def vocab_beside(path: paths.PathLike) -> paths.Path | None:
    """The `vocab.txt` that ships with a checkpoint (in its directory), if there is one."""
    path = paths.path(path)
    vocab = (path if path.is_dir() else path.parent) / "vocab.txt"
    return vocab if vocab.is_file() else None


def format_report(report: dict) -> str:
    """A few readable lines: counts, and the names a user should look at."""
    lines = [
        f"{report['source']} ({report['format']}): loaded {len(report['loaded'])} params, "
        f"missing {len(report['missing'])}, unused {len(report['unused'])}, "
        f"ignored {len(report['ignored'])}"
    ]
    if report["missing"]:
        lines.append("  missing (not in the checkpoint): " + ", ".join(report["missing"]))
    if report["unused"]:
        lines.append(
            "  unused (in the checkpoint, not in the model): " + ", ".join(report["unused"])
        )
    return "\n".join(lines)
