"""BertConfig: the architecture hyperparameters, the size presets, and readers for the
`config.json` of Hugging Face and the `bert_config.json` of Google's TF checkpoints."""

from __future__ import annotations

import dataclasses
import json
import numbers
import pathlib

from bert_jax import paths
from bert_jax.errors import UserError

ATTENTION_IMPLEMENTATIONS = ("einsum", "dot_product")
REMAT_POLICIES = ("nothing_saveable", "dots_saveable", "dots_with_no_batch_dims_saveable")


DTYPES = ("float32", "bfloat16", "float16")
_SIZES = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
          "max_position_embeddings", "type_vocab_size")  # fmt: skip


def check_fields(values: dict, prefix: str = "") -> None:
    """UserError naming the first bad field of a BertConfig's `values` (`prefix` + name, e.g.
    "model.num_heads", as the config that set it calls it)."""

    def name(field: str) -> str:
        return prefix + field

    for field in _SIZES:
        value = values[field]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise UserError(f"{name(field)} must be a positive integer, got {value!r}")
    if values["hidden_size"] % values["num_heads"]:
        raise UserError(
            f"{name('hidden_size')} {values['hidden_size']} is not divisible by "
            f"{name('num_heads')} {values['num_heads']}"
        )
    for field in ("hidden_dropout", "attention_dropout"):
        if not 0.0 <= values[field] < 1.0:
            raise UserError(f"{name(field)} {values[field]} must be in [0, 1)")
    for field in ("layer_norm_eps", "initializer_range"):
        if not values[field] > 0:
            raise UserError(f"{name(field)} {values[field]} must be positive")
    choices = {
        "dtype": DTYPES,
        "param_dtype": DTYPES,
        "attention": ATTENTION_IMPLEMENTATIONS,
        "remat_policy": REMAT_POLICIES,
    }
    for field, allowed in choices.items():
        if values[field] not in allowed:
            raise UserError(f"{name(field)} {values[field]!r} is not one of {', '.join(allowed)}")


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Architecture of one BERT encoder. The defaults are BERT-base, as released."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    # The released checkpoints use the exact erf GELU; tanh is the approximation some ports use.
    gelu_approximate: bool = False
    # Compute dtype (e.g. "bfloat16"); params stay in param_dtype. Softmax and losses run in fp32.
    dtype: str = "float32"
    param_dtype: str = "float32"
    # Activation checkpointing per layer, and nn.scan over the layer stack (one compiled layer).
    remat: bool = False
    remat_policy: str = "nothing_saveable"
    scan_layers: bool = False
    # "einsum": plain attention with dropout on the probabilities, as released.
    # "dot_product": jax.nn.dot_product_attention (fused kernels); no attention-probability dropout.
    attention: str = "einsum"
    # Pretraining reads the last layer only at [CLS] and the masked positions: compute that
    # layer only there (exact; see `gathers_last_layer` and `Encoder`).
    gather_last_layer: bool = True

    def __post_init__(self):
        check_fields(dataclasses.asdict(self))

    @property
    def gathers_last_layer(self) -> bool:
        """Whether the last layer runs only at the rows the heads read: asked for, and an
        unrolled stack (a scanned one runs the same shapes at every layer)."""
        return self.gather_last_layer and not self.scan_layers

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def replace(self, **changes) -> BertConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise UserError(f"unknown BertConfig field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> BertConfig:
        return cls().replace(**values)


def _size(layers: int, hidden: int, heads: int | None = None) -> dict:
    heads = heads or hidden // 64
    return dict(
        num_layers=layers, hidden_size=hidden, num_heads=heads, intermediate_size=4 * hidden
    )


# Google's 24 compact BERTs (L=layers, H=hidden, heads=H/64, mlp=4H) plus the named sizes.
SIZES: dict[str, dict] = {
    f"L-{layers}_H-{hidden}": _size(layers, hidden)
    for layers in (2, 4, 6, 8, 10, 12)
    for hidden in (128, 256, 512, 768)
}
SIZES.update(
    tiny=_size(2, 128),
    mini=_size(4, 256),
    small=_size(4, 512),
    medium=_size(8, 512),
    base=_size(12, 768),
    large=_size(24, 1024, 16),
)


def preset(name: str, prefix: str = "", **overrides) -> BertConfig:
    """The named size preset (e.g. "base", "L-4_H-256") with field overrides; errors name the
    field as `prefix` + field (e.g. "model.hidden_size" for a config section)."""
    if name not in SIZES:
        label = f"{prefix}size" if prefix else "model size"
        raise UserError(f"unknown {label} {name!r}; choose one of: {', '.join(SIZES)}")
    values = dataclasses.asdict(BertConfig(**SIZES[name]))
    unknown = set(overrides) - set(values)
    if unknown:
        raise UserError(f"unknown BertConfig field(s): {', '.join(sorted(unknown))}")
    values.update(overrides)
    check_fields(values, prefix)
    return BertConfig(**values)


_ACTIVATIONS = {"gelu": False, "gelu_new": True, "gelu_pytorch_tanh": True, "gelu_python": False}


def from_json_dict(values: dict, source: str = "config") -> BertConfig:
    """A BertConfig from Hugging Face `config.json` or Google `bert_config.json` contents
    (both use the same key names; HF adds layer_norm_eps)."""
    try:
        act = values.get("hidden_act", "gelu")
        position_type = values.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise UserError(
                f"{source}: position_embedding_type {position_type!r} is not BERT's 'absolute'"
            )
        if act not in _ACTIVATIONS:
            raise UserError(f"{source}: hidden_act {act!r} is not a GELU; BERT uses 'gelu'")
        return BertConfig(
            vocab_size=int(values["vocab_size"]),
            hidden_size=int(values["hidden_size"]),
            num_layers=int(values["num_hidden_layers"]),
            num_heads=int(values["num_attention_heads"]),
            intermediate_size=int(values["intermediate_size"]),
            max_position_embeddings=int(values.get("max_position_embeddings", 512)),
            type_vocab_size=int(values.get("type_vocab_size", 2)),
            hidden_dropout=float(values.get("hidden_dropout_prob", 0.1)),
            attention_dropout=float(values.get("attention_probs_dropout_prob", 0.1)),
            layer_norm_eps=float(values.get("layer_norm_eps", 1e-12)),
            initializer_range=float(values.get("initializer_range", 0.02)),
            gelu_approximate=_ACTIVATIONS[act],
        )
    except KeyError as e:
        raise UserError(f"{source}: missing key {e.args[0]!r}") from None


def from_json_file(path: str | pathlib.Path) -> BertConfig:
    path = paths.path(path)  # local or gs:// alike
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not a JSON config: {e}") from None
    return from_json_dict(values, source=str(path))


def to_hf_dict(config: BertConfig) -> dict:
    """The Hugging Face `config.json` for this architecture (BertForPreTraining)."""
    return {
        "architectures": ["BertForPreTraining"],
        "model_type": "bert",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": "gelu_new" if config.gelu_approximate else "gelu",
        "hidden_dropout_prob": config.hidden_dropout,
        "attention_probs_dropout_prob": config.attention_dropout,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "initializer_range": config.initializer_range,
        "layer_norm_eps": config.layer_norm_eps,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }
