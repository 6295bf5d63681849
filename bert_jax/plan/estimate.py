"""A step time from what the compiler reports, where it reports none.

libtpu's `cost_analysis()` counts the FLOPs of the compiled step (per chip) but gives no usable
time ("optimal_seconds" is negative for TPU targets), so the plan derives one and says so:

  compute      FLOPs per chip / the chip's bfloat16 peak (the compiler's count; the analytic
               model count where the step has loops, whose bodies XLA counts once, times 4/3
               under model.remat, which runs each layer's forward pass twice)
  collectives  bytes each chip sends per step / its ICI bandwidth, from the state's shardings
               (ZeRO/Megatron accounting, ring algorithms):
                 fsdp    all-gather of every fsdp-split parameter for the forward pass and
                         again for the backward pass, reduce-scatter of its gradient
                 data    all-reduce of every gradient shard
                 tensor  four all-reduces of the [batch, length, hidden] activations per layer
                         (two forward, two backward)
  estimate     compute + collectives: no overlap assumed, an upper bound on a well-overlapped
               step and a lower one on a memory-bound step (HBM traffic is not counted)

Implied MFU = model FLOPs / (chips x peak x estimate): at most the share of the compiled work
that is model matmuls.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bert_jax.trainer import flops


@dataclasses.dataclass(frozen=True)
class StepTime:
    seconds: float
    compute_seconds: float
    collective_seconds: float
    collective_bytes: float  # sent per chip per step
    basis: str  # how `seconds` was found, in a few words


def shard_bytes(leaf) -> int:
    """Bytes of one device's shard of an abstract array carrying its NamedSharding."""
    shape = leaf.sharding.shard_shape(leaf.shape)
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize


def _axes(leaf) -> set[str]:
    named = set()
    for entry in leaf.sharding.spec:
        if entry is not None:
            named.update((entry,) if isinstance(entry, str) else entry)
    return named


def collective_bytes(abstract_params, mesh_shape: dict, batch: int, seq: int, model) -> float:
    """Bytes one chip sends per training step (module docstring), from the sharded abstract
    params (ShapeDtypeStructs carrying NamedShardings)."""
    fsdp, data, tensor = (mesh_shape.get(a, 1) for a in ("fsdp", "data", "tensor"))
    sent = 0.0
    for leaf in jax.tree.leaves(abstract_params):
        shard = shard_bytes(leaf)
        if fsdp > 1 and "fsdp" in _axes(leaf):
            sent += 3 * shard * (fsdp - 1)  # two all-gathers + one reduce-scatter
        if data > 1:
            sent += 2 * shard * (data - 1) / data  # all-reduce of the gradient shard
    if tensor > 1:
        rows = batch / (fsdp * data)
        activation = rows * seq * model.hidden_size * jnp.dtype(model.dtype).itemsize
        sent += 4 * model.num_layers * 2 * activation * (tensor - 1) / tensor
    return sent


def step_time(
    flops_per_chip: float, peak: float, sent_bytes: float, ici_bytes_per_s: float, basis: str
) -> StepTime:
    compute = flops_per_chip / peak
    collectives = sent_bytes / ici_bytes_per_s if sent_bytes else 0.0
    return StepTime(compute + collectives, compute, collectives, sent_bytes, basis)


def chip_rates(device_kind: str, dtype: str) -> tuple[float, float]:
    """(peak FLOP/s, ICI bytes/s) of one chip; a ValueError for a chip without both facts."""
    peak = flops.peak_flops(device_kind, dtype)
    memory = flops.chip_memory(device_kind)
    if peak is None or memory is None:
        raise ValueError(f"no chip facts for {device_kind!r} (bert_jax/trainer/flops.py)")
    return peak, memory.ici_gbps * 1e9
