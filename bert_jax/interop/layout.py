"""Scanned <-> unrolled encoder layouts.

An unrolled encoder keeps one subtree per layer (`encoder/layer_0`, `encoder/layer_1`, ...);
a scanned one (`config.scan_layers`, one compiled layer under `nn.scan`) keeps a single subtree
`encoder/layers` whose arrays carry a leading layer axis. Checkpoints on disk are written
unrolled; these functions move params between the two without touching the values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import flax.linen as nn
import jax
import numpy as np

from bert_jax.errors import UserError

_LAYER = re.compile(r"layer_(\d+)")


def _encoder_path(params: Mapping) -> tuple[str, ...]:
    """Where the encoder sits: under `bert` in every model with heads, at the top in BertModel."""
    if "bert" in params:
        return ("bert", "encoder")
    if "encoder" in params:
        return ("encoder",)
    raise UserError(f"params have no encoder (top-level keys: {', '.join(sorted(params))})")


def _replace_at(params: Mapping, path: tuple[str, ...], value) -> dict:
    """A copy of `params` with the subtree at `path` replaced (the rest shared, not copied)."""
    out = dict(params)
    if len(path) == 1:
        out[path[0]] = value
    else:
        out[path[0]] = _replace_at(params[path[0]], path[1:], value)
    return out


def _get(params: Mapping, path: tuple[str, ...]) -> Mapping:
    for key in path:
        params = params[key]
    return params


def is_scanned(params: Mapping) -> bool:
    return "layers" in _get(nn.unbox(params), _encoder_path(params))


def num_layers(params: Mapping) -> int:
    params = nn.unbox(params)
    encoder = _get(params, _encoder_path(params))
    if "layers" in encoder:
        return int(jax.tree.leaves(encoder["layers"])[0].shape[0])
    return len(encoder)


def scan_layers(params: Mapping) -> dict:
    """`encoder/layer_{i}` subtrees -> one `encoder/layers` subtree stacked on a leading axis.
    Already-scanned params come back unchanged."""
    params = nn.unbox(params)
    path = _encoder_path(params)
    encoder = _get(params, path)
    if "layers" in encoder:
        return dict(params)
    indices = []
    for key in encoder:
        match = _LAYER.fullmatch(key)
        if not match:
            raise UserError(f"unexpected encoder entry {key!r}; expected layer_0 ... layer_N")
        indices.append(int(match.group(1)))
    if sorted(indices) != list(range(len(indices))):
        raise UserError(f"encoder layers {sorted(indices)} are not numbered 0..{len(indices) - 1}")
    layers = [encoder[f"layer_{i}"] for i in range(len(indices))]
    stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *layers)
    return _replace_at(params, path, {"layers": stacked})


def unscan_layers(params: Mapping) -> dict:
    """`encoder/layers` (leading layer axis) -> `encoder/layer_{i}` subtrees.
    Already-unrolled params come back unchanged."""
    params = nn.unbox(params)
    path = _encoder_path(params)
    encoder = _get(params, path)
    if "layers" not in encoder:
        return dict(params)
    stacked = encoder["layers"]
    count = num_layers(params)
    unrolled = {
        f"layer_{i}": jax.tree.map(lambda x, i=i: np.asarray(x[i]), stacked) for i in range(count)
    }
    return _replace_at(params, path, unrolled)


def to_layout(params: Mapping, scanned: bool) -> dict:
    return scan_layers(params) if scanned else unscan_layers(params)
