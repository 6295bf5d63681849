"""Start a model from pretrained weights: `load_encoder(source, target_params)`.

One function for every source: a bert-jax checkpoint (workdir or step directory, read by
`restore.load_params`), a Hugging Face directory or a Google TF checkpoint (read by
`bert_jax.interop.load.load_pretrained`). Weights are matched by name: every model keeps the
encoder under `bert` (the pooler inside it when the model has one), so a fine-tuning model takes
the pretrained encoder, keeps its own freshly initialised task head ("new") and leaves the
source's MLM/NSP heads behind ("dropped"); a pretraining model takes the heads as well.

A scanned source goes into an unrolled model and back (the layer axis is stacked or split).
A weight whose shape differs is refused with its name and both shapes, never cut or padded.
"""

from __future__ import annotations

import dataclasses
import os

import flax.linen as nn
import jax
import numpy as np
from flax import traverse_util

from bert_jax.checkpoint import metadata as checkpoint_metadata
from bert_jax.checkpoint import restore
from bert_jax.errors import UserError
from bert_jax.interop import layout

# Weights a source must provide: an encoder is never partly fresh.
_ENCODER_PREFIXES = ("bert/embeddings/", "bert/encoder/")
_SHOWN = 6


@dataclasses.dataclass
class InitReport:
    """What `load_encoder` did, by parameter path ('bert/encoder/layer_0/...')."""

    source: str
    format: str  # "bert-jax", "hf" or "tf"
    loaded: list[str]
    new: list[str]  # in the model, not in the source: kept as initialised (task heads)
    dropped: list[str]  # in the source, not in the model (pretraining heads)
    layout_change: str | None = None  # "unrolled -> scanned" when the layouts differ

    def summary(self) -> str:
        text = (
            f"{self.format} {self.source}: loaded {len(self.loaded)}, new {len(self.new)}, "
            f"dropped {len(self.dropped)}"
        )
        if self.new:
            text += f" (new: {_listing(self.new)})"
        if self.layout_change:
            text += f"; layers {self.layout_change}"
        return text


def _listing(names: list[str]) -> str:
    more = f" ... and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _name(path: tuple) -> str:
    return "/".join(str(p) for p in path)


def _is_bert_jax(source: str) -> bool:
    try:
        checkpoint_metadata.resolve(source)
    except UserError:
        return False
    return True


def read_source(source: str | os.PathLike) -> tuple[dict, str, str | None]:
    """(params as host numpy, format, vocab fingerprint or None) of any supported source."""
    from bert_jax.interop import load

    source = os.fspath(source)
    try:
        load.require_checkpoint(source)
    except UserError as e:
        raise UserError(f"init_from: {e}") from None
    if _is_bert_jax(source):
        root, step = checkpoint_metadata.resolve(source)
        fingerprint = checkpoint_metadata.read_metadata(root / str(step)).get("vocab_fingerprint")
        _, params = restore.load_params(source)
        return params, "bert-jax", fingerprint
    _, params, report = load.load_pretrained(source)
    return params, report.get("format", "pretrained"), None


def _place(value: np.ndarray, like):
    """`value` as an array of `like`'s dtype and sharding (each device gets only its part)."""
    dtype = like.dtype
    sharding = getattr(like, "sharding", None)
    if sharding is None:
        return np.asarray(value, dtype)
    return jax.make_array_from_callback(
        value.shape, sharding, lambda index: np.asarray(value[index], dtype)
    )


def _shape_errors(source_flat: dict, target_flat: dict) -> list[str]:
    return [
        f"{_name(key)} {tuple(np.shape(source_flat[key]))} vs {tuple(target_flat[key].shape)}"
        for key in sorted(set(source_flat) & set(target_flat))
        if tuple(np.shape(source_flat[key])) != tuple(target_flat[key].shape)
    ]


def load_encoder(
    source: str | os.PathLike,
    target_params,
    *,
    vocab_fingerprint: str | None = None,
    encoder_only: bool = False,
) -> tuple[dict, InitReport]:
    """`target_params` with every weight the source has under the same name replaced by the
    source's, placed with the target's dtype and sharding. Targets may be concrete (fresh init:
    new weights keep their values) or abstract ShapeDtypeStructs (new weights stay abstract).

    Refuses (UserError): a missing source, a weight of another shape (names both shapes), an
    encoder weight the source lacks, a different vocabulary fingerprint (bert-jax sources).
    With `encoder_only` (fine-tuning) only the `bert` subtree is taken: every head of the source
    (pretraining heads, another task's classifier) is dropped, and the model's heads are new."""
    source_params, fmt, source_fingerprint = read_source(source)
    if vocab_fingerprint and source_fingerprint and vocab_fingerprint != source_fingerprint:
        raise UserError(
            f"init_from {source}: trained with another vocabulary "
            f"(fingerprint {source_fingerprint}, this run {vocab_fingerprint})"
        )
    target_boxed = traverse_util.flatten_dict(dict(target_params))
    target_flat = {k: nn.meta.unbox(v) for k, v in target_boxed.items()}
    target_scanned = layout.is_scanned(nn.meta.unbox(dict(target_params)))
    source_scanned = layout.is_scanned(source_params)
    source_params = layout.to_layout(source_params, target_scanned)
    source_flat = traverse_util.flatten_dict(source_params)
    heads = {} if not encoder_only else {k: v for k, v in source_flat.items() if k[0] != "bert"}
    source_flat = {k: v for k, v in source_flat.items() if k not in heads}

    mismatched = _shape_errors(source_flat, target_flat)
    if mismatched:
        vocab_hint = ""
        key = ("bert", "embeddings", "word_embeddings", "embedding")
        if key in source_flat and key in target_flat:
            theirs, ours = np.shape(source_flat[key])[0], target_flat[key].shape[0]
            if theirs != ours:
                vocab_hint = f" (vocab_size {theirs} in the source, {ours} in this model)"
        raise UserError(
            f"init_from {source}: {len(mismatched)} weights differ in shape, source vs model"
            f"{vocab_hint}: {_listing(mismatched)}"
        )
    new = sorted(_name(k) for k in target_flat if k not in source_flat)
    encoder_new = [n for n in new if n.startswith(_ENCODER_PREFIXES)]
    if encoder_new:
        raise UserError(
            f"init_from {source}: the source lacks {len(encoder_new)} encoder weights of this "
            f"model (another depth or architecture?): {_listing(encoder_new)}"
        )
    loaded_keys = [k for k in target_flat if k in source_flat]
    if not loaded_keys:
        raise UserError(f"init_from {source}: no weight of the source fits this model")

    out = {}
    for key, boxed in target_boxed.items():
        if key not in source_flat:
            out[key] = boxed
            continue
        value = _place(np.asarray(source_flat[key]), target_flat[key])
        out[key] = boxed.replace_boxed(value) if isinstance(boxed, nn.meta.AxisMetadata) else value
    change = None
    if source_scanned != target_scanned:
        names = {True: "scanned", False: "unrolled"}
        change = f"{names[source_scanned]} -> {names[target_scanned]}"
    report = InitReport(
        source=os.fspath(source),
        format=fmt,
        loaded=sorted(_name(k) for k in loaded_keys),
        new=new,
        dropped=sorted(
            [*(_name(k) for k in source_flat if k not in target_flat), *(_name(k) for k in heads)]
        ),  # fmt: skip
        layout_change=change,
    )
    return traverse_util.unflatten_dict(out), report
