"""`--search`: the train step compiled for every sensible mesh of the topology, ranked.

Meshes: every data x fsdp x tensor factorisation of the chip count with tensor at most 4 (the
chips of one host: tensor parallelism's all-reduces run once per layer and want the shortest
links). A mesh whose shapes do not divide (heads, vocabulary or batch over its axes) is listed
as skipped with the trainer's own message. Options: the config's; where the step does not fit
without activation recomputation, it is compiled again with `model.remat` (recomputing costs
about a third more FLOPs, so remat only helps a mesh that would not fit otherwise).
`model.scan_layers` stays as configured: it changes compile time, not the step.

Ranked: the steps that fit, fastest estimated step first; then those that do not, closest to
fitting first; then the skipped meshes.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable

from bert_jax.errors import UserError
from bert_jax.plan import aot, topology

MAX_TENSOR = 4  # chips of one host


@dataclasses.dataclass
class Skipped:
    label: str
    reason: str

    def to_json(self) -> dict:
        return {"label": self.label, "skipped": self.reason}


def meshes(chips: int) -> list[dict[str, int]]:
    """(data, fsdp, tensor) sizes with product `chips`, tensor <= MAX_TENSOR; data-parallel
    first, then more fsdp, then more tensor."""
    found = []
    for tensor in (t for t in range(1, min(chips, MAX_TENSOR) + 1) if chips % t == 0):
        rest = chips // tensor
        for fsdp in (f for f in range(1, rest + 1) if rest % f == 0):
            found.append({"data": rest // fsdp, "fsdp": fsdp, "tensor": tensor})
    return found


def with_mesh(config, mesh: dict[str, int], remat: bool | None = None):
    """A copy of `config` on `mesh` (one slice), with `model.remat` set when given."""
    copy = config.copy_and_resolve_references()
    for axis, size in mesh.items():
        copy.mesh[axis] = size
    for axis in mesh:
        copy.mesh[f"dcn_{axis}"] = 1
    if remat is not None:
        copy.model.remat = remat
    return copy


def rank(results: list) -> list:
    """Fitting plans fastest first, then the others closest to fitting, then skipped meshes."""
    fitting = sorted((p for p in results if isinstance(p, aot.Plan) and p.fits),
                     key=lambda p: p.time.seconds)  # fmt: skip
    short = sorted((p for p in results if isinstance(p, aot.Plan) and not p.fits),
                   key=lambda p: p.shortfall)  # fmt: skip
    return [*fitting, *short, *(s for s in results if isinstance(s, Skipped))]


def search(config, target: topology.Topology, log: Callable[[str], None] | None = None) -> list:
    """Every candidate's Plan (or Skipped), ranked."""
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    devices = topology.devices(target)
    candidates = meshes(len(devices))
    results: list = []
    for index, mesh in enumerate(candidates, 1):
        label = aot.describe_options(mesh, {})
        log(f"plan: [{index}/{len(candidates)}] {label}: compiling for {target.describe()}")
        plan = _try(with_mesh(config, mesh), target, devices, label, log)
        results.append(plan)
        if isinstance(plan, aot.Plan) and not plan.fits and not plan.options["remat"]:
            log(f"plan: [{index}/{len(candidates)}] {label}: again with model.remat")
            results.append(_try(with_mesh(config, mesh, remat=True), target, devices, label, log))
    return rank(results)


def _try(config, target, devices, label: str, log):
    started = time.perf_counter()
    try:
        plan = aot.plan_step(config, target, devices)
    except UserError as e:  # shapes that do not divide over this mesh
        log(f"plan:   skipped: {e}")
        return Skipped(label, str(e))
    verdict = "fits" if plan.fits else "does not fit"
    log(f"plan:   {verdict} ({time.perf_counter() - started:.0f} s)")
    return plan
