"""The whole sharding policy in one place: the device mesh built from the config, one small
table mapping the model's logical axis names to mesh axes, and the assembly of each global batch
from the rows every process supplies (`host_feed`, `to_global_batch`).

Mesh axes:
  data    batch split, params replicated (plain data parallelism)
  fsdp    batch split AND params/optimizer state split along `embed` (ZeRO-3; gathered per use)
  tensor  heads, mlp and vocab split inside each layer (Megatron-style)

Layers name their parameter axes (`bert_jax/model/bert.py`); nothing else in the trainer writes a
PartitionSpec for a parameter. Shapes are checked against the mesh here, before anything
compiles, so a bad mesh or batch is one line naming the numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Mapping

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from bert_jax.errors import UserError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")


def logical_axis_rules() -> tuple[tuple[str, str | tuple[str, ...] | None], ...]:
    """Logical axis name -> mesh axes (t5x `standard_logical_axis_rules` style).

    `norm` (LayerNorm scale/bias) is replicated: H floats per layer save nothing when split, and
    splitting would add a gather to every use. Biases carry their kernel's output axis name, so
    under tensor parallelism a bias is split exactly like the activations it is added to.
    `embed` on fsdp shards every kernel and embedding table along the hidden axis, which all of
    them have. Axes absent from the mesh-size product (size-1 mesh axes) cost nothing.
    """
    return (
        ("batch", BATCH_AXES),
        ("act_batch", BATCH_AXES),
        ("act_length", None),
        ("act_embed", None),
        ("vocab", "tensor"),
        ("heads", "tensor"),
        ("mlp", "tensor"),
        ("embed_out", "tensor"),
        ("embed", "fsdp"),
        ("kv", None),
        ("norm", None),
        ("position", None),
        ("token_type", None),
        ("classes", None),
        ("layers", None),
    )


# ---------------------------------------------------------------------------------------------
# The mesh


def _describe(sizes: Mapping[str, int]) -> str:
    return " x ".join(f"{axis}={size}" for axis, size in sizes.items())


def resolve_axis_sizes(
    sizes: Mapping[str, int], devices: int, what: str = "mesh", unit: str = "devices"
) -> dict:
    """Replace the one -1 by what the other axes leave of `devices`; check the product."""
    sizes = dict(sizes)
    fill = [axis for axis, size in sizes.items() if size == -1]
    bad = [f"{axis}={size}" for axis, size in sizes.items() if size == 0 or size < -1]
    if bad:
        raise UserError(f"{what} sizes must be positive or -1 (fill), got {', '.join(bad)}")
    if len(fill) > 1:
        raise UserError(f"{what} {_describe(sizes)} has more than one -1; at most one axis fills")
    known = math.prod(size for size in sizes.values() if size != -1)
    if fill:
        if devices % known:
            raise UserError(
                f"{what} {_describe(sizes)}: the fixed axes ({known}) "
                f"do not divide {devices} {unit}"
            )
        sizes[fill[0]] = devices // known
    total = math.prod(sizes.values())
    if total != devices:
        raise UserError(f"{what} {_describe(sizes)} = {total} does not match {devices} {unit}")
    return sizes


def mesh_shape(mesh_config, devices: list) -> tuple[dict, dict]:
    """(per-slice sizes, across-slice sizes) for `devices`, from the `mesh` config section."""
    slices = 1 + max(int(getattr(d, "slice_index", 0) or 0) for d in devices)
    dcn = resolve_axis_sizes(
        {axis: int(mesh_config[f"dcn_{axis}"]) for axis in MESH_AXES}, slices, "dcn mesh", "slices"
    )
    if len(devices) % slices:
        raise UserError(f"{len(devices)} devices do not split evenly into {slices} slices")
    ici = resolve_axis_sizes(
        {axis: int(mesh_config[axis]) for axis in MESH_AXES}, len(devices) // slices
    )
    return ici, dcn


def make_mesh(mesh_config, devices: list | None = None) -> Mesh:
    """The (data, fsdp, tensor) mesh over all devices of all processes.

    Within a slice `create_device_mesh` lays the axes onto the physical topology (tensor
    innermost, on the fastest links); across TPU slices `create_hybrid_device_mesh` puts the
    `dcn_*` factor of each axis on the data-centre network.
    """
    devices = list(jax.devices() if devices is None else devices)
    ici, dcn = mesh_shape(mesh_config, devices)
    ici_shape = [ici[a] for a in MESH_AXES]
    if math.prod(dcn.values()) > 1:
        dcn_shape = [dcn[a] for a in MESH_AXES]
        grid = mesh_utils.create_hybrid_device_mesh(
            ici_shape, dcn_shape, devices, allow_split_physical_axes=True
        )
    else:
        grid = mesh_utils.create_device_mesh(ici_shape, devices, allow_split_physical_axes=True)
    return Mesh(grid, MESH_AXES)


def batch_shards(mesh: Mesh) -> int:
    """How many pieces the batch axis is split into."""
    return math.prod(mesh.shape[a] for a in BATCH_AXES)


# ---------------------------------------------------------------------------------------------
# Shardings


def logical_to_sharding(logical_specs, mesh: Mesh, rules=None):
    """A pytree of logical PartitionSpecs -> NamedShardings on `mesh`."""
    return nn.logical_to_mesh_sharding(logical_specs, mesh, rules or logical_axis_rules())


def batch_sharding(mesh: Mesh, rules=None) -> NamedSharding:
    """Leading (batch) axis split over the batch axes; any further axes whole."""
    spec = nn.logical_to_mesh_axes(("batch",), rules or logical_axis_rules())
    return NamedSharding(mesh, spec)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


@contextlib.contextmanager
def activate(mesh: Mesh, rules=None) -> Iterator[None]:
    """Mesh + logical rules in scope, so `nn.with_logical_constraint` in the model applies."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules or logical_axis_rules()):
        yield


# ---------------------------------------------------------------------------------------------
# Checks before compiling


def _path_name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def check_divisible(abstract_tree, shardings) -> None:
    """Every array dimension split over mesh axes must divide by their total size (JAX does not
    pad uneven shards); raise one line naming the parameter, the dimension and the axes."""
    leaves = jax.tree_util.tree_leaves_with_path(abstract_tree)
    for (path, leaf), sharding in zip(leaves, jax.tree.leaves(shardings), strict=True):
        for dim, axes in enumerate(sharding.spec):
            if axes is None:
                continue
            axes = (axes,) if isinstance(axes, str) else tuple(axes)
            parts = math.prod(sharding.mesh.shape[a] for a in axes)
            if leaf.shape[dim] % parts:
                split = " x ".join(f"{a}={sharding.mesh.shape[a]}" for a in axes)
                raise UserError(
                    f"{_path_name(path)} {tuple(leaf.shape)}: dimension {dim} of size "
                    f"{leaf.shape[dim]} does not divide by mesh {split} = {parts}"
                )


def check_batch(batch_size: int, accum_steps: int, mesh: Mesh) -> None:
    """The global batch splits into `accum_steps` micro-batches, each over every batch shard (and
    so into the equal parts the processes supply: see `host_feed`)."""
    if batch_size < 1 or accum_steps < 1:
        raise UserError(
            f"train.batch_size {batch_size} and train.accum_steps {accum_steps} must be positive"
        )
    if batch_size % accum_steps:
        raise UserError(
            f"train.batch_size {batch_size} is not divisible by train.accum_steps {accum_steps}"
        )
    shards = batch_shards(mesh)
    micro = batch_size // accum_steps
    if micro % shards:
        split = " x ".join(f"{a}={mesh.shape[a]}" for a in BATCH_AXES)
        where = f" (batch_size {batch_size} / accum_steps {accum_steps})" if accum_steps > 1 else ""
        raise UserError(
            f"global batch {micro}{where} is not divisible by {shards} batch shards ({split})"
        )


# ---------------------------------------------------------------------------------------------
# Multi-host batch assembly
#
# The global batch is cut into `batch_shards(mesh)` equal row blocks, block s on the devices at
# batch-shard index s. A process supplies the blocks its own devices hold. When one block lies on
# devices of several processes (e.g. tensor=8 over hosts of 4 chips), each of them must supply the
# SAME rows for it, so the input streams are keyed by "group" (the processes holding the same
# blocks), not by process: processes of one group read one stream.


@dataclasses.dataclass(frozen=True)
class HostFeed:
    """What this process supplies: the host batch is the rows of `shards` (ascending) of every
    global batch, read from input stream `group` of `groups`."""

    mesh: Mesh
    group: int
    groups: int
    shards: tuple[int, ...]  # the batch shards this process's devices hold, ascending
    num_shards: int
    process_count: int

    def rows(self, global_rows: int) -> np.ndarray:
        """The global row indices of this process's host batch, in host-batch order."""
        per = global_rows // self.num_shards
        return np.concatenate([np.arange(s * per, (s + 1) * per) for s in self.shards])


def _shards_by_process(mesh: Mesh) -> dict[int, set[int]]:
    """Process index -> the batch shards its devices hold (read from the batch sharding)."""
    shards = batch_shards(mesh)
    held: dict[int, set[int]] = {}
    for device, index in batch_sharding(mesh).devices_indices_map((shards,)).items():
        held.setdefault(device.process_index, set()).add(index[0].start or 0)
    return held


def group_processes(held: Mapping[int, set[int]], layout: str) -> list[tuple[int, ...]]:
    """The groups' shards, ordered by their first shard: processes holding the same shards form
    one group; groups must hold disjoint shards, equally many each. `layout` names the mesh and
    hosts in the error."""
    groups = sorted({tuple(sorted(s)) for s in held.values()})
    seen: dict[int, tuple[int, ...]] = {}
    for group in groups:
        for shard in group:
            if shard in seen:
                a = next(p for p, s in held.items() if tuple(sorted(s)) == seen[shard])
                b = next(p for p, s in held.items() if tuple(sorted(s)) == group)
                raise UserError(
                    f"{layout}: process {a} holds batch shards {list(seen[shard])} and process "
                    f"{b} holds {list(group)}; a shard shared by processes must be all they hold "
                    "(change the mesh or the device order)"
                )
            seen[shard] = group
    if len({len(g) for g in groups}) > 1:
        sizes = ", ".join(f"{list(g)}" for g in groups)
        raise UserError(
            f"{layout}: processes hold unequal numbers of batch shards ({sizes}), so their input "
            "rows cannot be equal parts of the batch (change the mesh or the device order)"
        )
    return groups


def host_feed(mesh: Mesh, process_index: int | None = None) -> HostFeed:
    """This process's part in building every global batch on `mesh` (see `HostFeed`)."""
    process = jax.process_index() if process_index is None else process_index
    held = _shards_by_process(mesh)
    layout = (
        f"mesh {_describe(dict(mesh.shape))} over {len(held)} processes x "
        f"{mesh.devices.size // len(held)} devices"
    )
    groups = group_processes(held, layout)
    mine = tuple(sorted(held[process]))
    return HostFeed(
        mesh=mesh,
        group=groups.index(mine),
        groups=len(groups),
        shards=mine,
        num_shards=batch_shards(mesh),
        process_count=len(held),
    )


def to_global_batch(host_batch: dict, feed: HostFeed) -> dict:
    """This process's host batch -> global jax.Arrays split on dim 0 over the batch axes: host
    rows block j goes to batch shard `feed.shards[j]` on every local device that holds it."""
    sharding = batch_sharding(feed.mesh)
    out = {}
    for name, value in host_batch.items():
        value = np.asarray(value)
        if value.shape[0] % len(feed.shards):
            raise UserError(
                f"host batch of {value.shape[0]} rows ({name}) does not split over the "
                f"{len(feed.shards)} batch shards this process holds"
            )
        per = value.shape[0] // len(feed.shards)
        block = {shard: j for j, shard in enumerate(feed.shards)}

        def piece(index, value=value, per=per, block=block):
            j = block[(index[0].start or 0) // per]
            return value[j * per : (j + 1) * per][(slice(None), *index[1:])]

        shape = (per * feed.num_shards, *value.shape[1:])
        out[name] = jax.make_array_from_callback(shape, sharding, piece)
    return out
