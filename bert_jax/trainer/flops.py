"""Analytic FLOPs of a pretraining step, and the facts of the chip it runs on: peak matmul rate
(for MFU), HBM capacity and interconnect bandwidth (for `bert-jax plan`).

Counted as the matmuls do (2 FLOPs per multiply-add), backward = 2 x forward:
  encoder   per token per layer  2 * (4H^2 + 2HF)   (q, k, v, output; mlp in and out)
            attention            4 * S * H          (scores q.k and the weighted sum of v)
  MLM head  per masked position  2 * (H^2 + V*H)    (transform, tied vocab projection)
  pooler + NSP per sequence      2 * (H^2 + 2H)
Embedding lookups, LayerNorm, softmax and bias adds are not matmuls and are left out (they are
memory-bound and add a few percent at most). Only masked positions reach the vocabulary
projection, so P (not S) multiplies the V*H term. Pretraining with `gather_last_layer` (an
unrolled stack) runs the last layer's keys and values at all S tokens and the rest of it at the
Q = P + 1 rows the heads read (the masked positions and [CLS]):
  last layer per sequence  2 * (2H^2 * S + (2H^2 + 2HF) * Q) + 4 * S * H * Q
"""

from __future__ import annotations

import dataclasses

from bert_jax.model.config import BertConfig


def forward_flops(config: BertConfig, batch: int, seq: int, predictions: int) -> float:
    h, f, v, layers = (
        config.hidden_size,
        config.intermediate_size,
        config.vocab_size,
        config.num_layers,
    )

    def layer(queries: int) -> int:
        """One layer per sequence: keys and values at all `seq` tokens, the rest at `queries`."""
        return 2 * (2 * h * h * seq + (2 * h * h + 2 * h * f) * queries) + 4 * seq * h * queries

    # Only pretraining (predictions > 0) passes positions that the last layer can gather to.
    last_rows = predictions + 1 if predictions and config.gathers_last_layer else seq
    encoder = (layers - 1) * layer(seq) + layer(last_rows)
    mlm = 2 * (h * h + v * h) * predictions
    pooler = 2 * (h * h + 2 * h)
    return float(batch * (encoder + mlm + pooler))


def train_flops(config: BertConfig, batch: int, seq: int, predictions: int) -> float:
    """Forward + backward (gradients for activations and weights: twice the forward)."""
    return 3.0 * forward_flops(config, batch, seq, predictions)


# Dense peak TFLOP/s per chip for (bfloat16, float32) matmuls, matched in order against
# `device_kind` (lowercase). float32 is what XLA runs a float32 dot at JAX's default precision:
# TF32 tensor cores on Ampere/Hopper GPUs, one bfloat16 pass on TPUs (so the same peak as
# bfloat16 there). Sources: Google Cloud TPU system architecture pages; NVIDIA datasheets
# (dense, no sparsity).
PEAK_TFLOPS = (
    ("v6 lite", 918.0, 918.0),  # TPU v6e (Trillium)
    ("v6e", 918.0, 918.0),
    ("v5 lite", 197.0, 197.0),  # TPU v5e
    ("v5e", 197.0, 197.0),
    ("v5p", 459.0, 459.0),
    ("v5", 459.0, 459.0),  # TPU v5p reports "TPU v5"
    ("v4", 275.0, 275.0),
    ("h200", 989.0, 495.0),
    ("h100 pcie", 756.0, 378.0),
    ("h100", 989.0, 495.0),  # SXM
    ("a100", 312.0, 156.0),
)
# A float32 dot at "highest" precision: true float32 (CUDA cores on GPUs; several bfloat16
# passes on TPUs, which have no float32 peak of their own, so none is claimed for them).
PEAK_FULL_FLOAT32_TFLOPS = (("h200", 67.0), ("h100 pcie", 51.0), ("h100", 67.0), ("a100", 19.5))
HALF_DTYPES = ("bfloat16", "float16")


def peak_flops(device_kind: str, dtype: str = "bfloat16", precision: str | None = None):
    """Peak FLOP/s of one device of this kind for matmuls in the model's compute `dtype`, or None
    when unknown (CPU). `precision`: jax_default_matmul_precision ("highest"/"float32" make
    float32 dots true float32)."""
    if dtype not in (*HALF_DTYPES, "float32"):
        raise ValueError(f"no peak table for compute dtype {dtype!r}")
    if dtype == "float32" and str(precision).lower() in ("highest", "float32"):
        table = list(PEAK_FULL_FLOAT32_TFLOPS)
    else:
        column = 1 if dtype in HALF_DTYPES else 2
        table = [(row[0], row[column]) for row in PEAK_TFLOPS]
    tflops = _first_match(table, device_kind)
    return None if tflops is None else tflops * 1e12


@dataclasses.dataclass(frozen=True)
class ChipMemory:
    """One chip's memory and links: HBM capacity (GiB) and inter-chip interconnect bandwidth
    (GB/s, both directions of all its ports together)."""

    hbm_gib: float
    ici_gbps: float


# Per-chip memory facts of the TPUs `bert-jax plan` compiles for, matched in order against
# `device_kind` (lowercase) as PEAK_TFLOPS is. Source: the Google Cloud TPU system architecture
# pages; v4's ICI (not on its page) from the TPU v4 paper: 6 links at 50 GB/s each way.
CHIP_MEMORY = (
    ("v6 lite", ChipMemory(32.0, 800.0)),  # TPU v6e (Trillium)
    ("v6e", ChipMemory(32.0, 800.0)),
    ("v5 lite", ChipMemory(16.0, 400.0)),  # TPU v5e
    ("v5e", ChipMemory(16.0, 400.0)),
    ("v5p", ChipMemory(95.0, 1200.0)),
    ("v5", ChipMemory(95.0, 1200.0)),  # TPU v5p reports "TPU v5"
    ("v4", ChipMemory(32.0, 600.0)),
)


def chip_memory(device_kind: str) -> ChipMemory | None:
    """The memory facts of one chip of this kind, or None when unknown."""
    return _first_match(CHIP_MEMORY, device_kind)


def _first_match(table, device_kind: str):
    """The value of the first (key, value) row whose key is in `device_kind` (lowercased):
    the tables list the more specific kinds first ("h100 pcie" before "h100")."""
    kind = device_kind.lower()
    return next((value for key, value in table if key in kind), None)
