"""The one table that relates our parameter tree to Hugging Face weight names.

Every importer turns its source into Hugging Face names (canonical: `bert.` prefix, LayerNorm
`weight`/`bias`, PyTorch [out, in] linear layout) and this table does the rest, so the
Hugging Face, Google TF and export paths cannot drift apart. A rule's `kind` says how one array
changes between the two layouts; `hf_shape` is what the checkpoint must hold for a given config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from bert_jax.model.config import BertConfig

Path = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Rule:
    ours: Path
    hf: str
    kind: str


def _to_ours(kind: str, x: np.ndarray, c: BertConfig) -> np.ndarray:
    if kind == "copy":
        return x
    if kind == "linear":  # [out, in] -> [in, out]
        return x.T
    if kind == "heads_in":  # [N*D, H] -> [H, N, D]
        return x.T.reshape(c.hidden_size, c.num_heads, c.head_dim)
    if kind == "heads_bias":  # [N*D] -> [N, D]
        return x.reshape(c.num_heads, c.head_dim)
    if kind == "heads_out":  # [H, N*D] -> [N, D, H]
        return x.T.reshape(c.num_heads, c.head_dim, c.hidden_size)
    raise AssertionError(kind)


def _to_hf(kind: str, x: np.ndarray, c: BertConfig) -> np.ndarray:
    if kind == "copy":
        return x
    if kind == "linear":
        return x.T
    if kind == "heads_in":
        return x.reshape(c.hidden_size, c.hidden_size).T
    if kind == "heads_bias":
        return x.reshape(c.hidden_size)
    if kind == "heads_out":
        return x.reshape(c.hidden_size, c.hidden_size).T
    raise AssertionError(kind)


def to_ours(rule: Rule, x: np.ndarray, config: BertConfig) -> np.ndarray:
    return np.ascontiguousarray(_to_ours(rule.kind, x, config), dtype=np.float32)


def to_hf(rule: Rule, x: np.ndarray, config: BertConfig) -> np.ndarray:
    return np.ascontiguousarray(_to_hf(rule.kind, np.asarray(x), config), dtype=np.float32)


def _dense(ours: Path, hf: str, kind: str = "linear", bias: str = "copy") -> list[Rule]:
    return [
        Rule((*ours, "kernel"), f"{hf}.weight", kind),
        Rule((*ours, "bias"), f"{hf}.bias", bias),
    ]


def _norm(ours: Path, hf: str) -> list[Rule]:
    return [
        Rule((*ours, "scale"), f"{hf}.weight", "copy"),
        Rule((*ours, "bias"), f"{hf}.bias", "copy"),
    ]


def _layer(i: int) -> list[Rule]:
    ours: Path = ("bert", "encoder", f"layer_{i}")
    hf = f"bert.encoder.layer.{i}"
    rules = []
    for name in ("query", "key", "value"):
        rules += _dense(
            (*ours, "attention", name), f"{hf}.attention.self.{name}", "heads_in", "heads_bias"
        )
    rules += _dense((*ours, "attention", "output"), f"{hf}.attention.output.dense", "heads_out")
    rules += _norm((*ours, "attention_norm"), f"{hf}.attention.output.LayerNorm")
    rules += _dense((*ours, "intermediate"), f"{hf}.intermediate.dense")
    rules += _dense((*ours, "output"), f"{hf}.output.dense")
    rules += _norm((*ours, "output_norm"), f"{hf}.output.LayerNorm")
    return rules


ENCODER_PREFIXES = (("bert", "embeddings"), ("bert", "encoder"))
POOLER_PREFIX = ("bert", "pooler")


def rules(config: BertConfig) -> list[Rule]:
    """Every parameter of BertForPreTraining (unscanned), in checkpoint order."""
    emb: Path = ("bert", "embeddings")
    out = [
        Rule((*emb, table, "embedding"), f"bert.embeddings.{table}.weight", "copy")
        for table in ("word_embeddings", "position_embeddings", "token_type_embeddings")
    ]
    out += _norm((*emb, "LayerNorm"), "bert.embeddings.LayerNorm")
    for i in range(config.num_layers):
        out += _layer(i)
    out += _dense(POOLER_PREFIX + ("dense",), "bert.pooler.dense")
    out += _dense(("mlm_transform",), "cls.predictions.transform.dense")
    out += _norm(("mlm_norm",), "cls.predictions.transform.LayerNorm")
    out.append(Rule(("mlm_output_bias",), "cls.predictions.bias", "copy"))
    out += _dense(("nsp",), "cls.seq_relationship")
    return out


def hf_shape(rule: Rule, config: BertConfig) -> tuple[int, ...]:
    """The shape the checkpoint must hold for this rule under `config`."""
    c = config
    shapes = {
        "bert.embeddings.word_embeddings.weight": (c.vocab_size, c.hidden_size),
        "bert.embeddings.position_embeddings.weight": (c.max_position_embeddings, c.hidden_size),
        "bert.embeddings.token_type_embeddings.weight": (c.type_vocab_size, c.hidden_size),
        "cls.predictions.bias": (c.vocab_size,),
        "cls.seq_relationship.weight": (2, c.hidden_size),
        "cls.seq_relationship.bias": (2,),
    }
    if rule.hf in shapes:
        return shapes[rule.hf]
    if rule.hf.endswith("intermediate.dense.weight"):
        return (c.intermediate_size, c.hidden_size)
    if rule.hf.endswith("intermediate.dense.bias"):
        return (c.intermediate_size,)
    if ".output.dense.weight" in rule.hf and ".attention." not in rule.hf:
        return (c.hidden_size, c.intermediate_size)
    if rule.hf.endswith(".weight") and rule.kind != "copy":
        return (c.hidden_size, c.hidden_size)
    return (c.hidden_size,)


def ours_shape(rule: Rule, config: BertConfig) -> tuple[int, ...]:
    """The shape of our param for this rule under `config`."""
    c, shape = config, hf_shape(rule, config)
    return {
        "copy": shape,
        "linear": shape[::-1],
        "heads_in": (c.hidden_size, c.num_heads, c.head_dim),
        "heads_bias": (c.num_heads, c.head_dim),
        "heads_out": (c.num_heads, c.head_dim, c.hidden_size),
    }[rule.kind]


def path_name(path: Path) -> str:
    return "/".join(path)


def flatten(tree: dict, prefix: Path = ()) -> dict[Path, object]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def unflatten(flat: dict[Path, object]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree
