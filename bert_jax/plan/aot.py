"""`plan_step(config, topology)`: the train step `pretrain` or `finetune` would run, compiled
ahead of time for a TPU topology on this machine, and what the compiler says about it.

The state, its shardings and the jitted step come from `trainer.loop.setup` (the trainer's own
construction) over the topology's abstract devices; only the task is built without its data
(`bert_jax/plan/tasks.py`). The step is lowered with abstract inputs (`jax.ShapeDtypeStruct`s
carrying the trainer's shardings) and compiled by libtpu; nothing runs.

Per chip: HBM the compiled step needs (`memory_analysis()`: its arguments, i.e. the state and
the batch, its outputs, which reuse the donated state, its temporaries and its program) against
the chip's HBM; the state's bytes by part from its shardings;
FLOPs per step (`cost_analysis()`) beside the analytic model count; and a step time, MFU and
sequences/s (`bert_jax/plan/estimate.py`). A step the compiler cannot fit is a plan too: it
"does not fit", by the amount the compiler names.
"""

from __future__ import annotations

import dataclasses
import re
import time

import jax

from bert_jax import sharding
from bert_jax.plan import estimate, tasks, topology
from bert_jax.trainer import flops, loop

GIB = 2**30
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}  # XLA prints binary units


@dataclasses.dataclass
class Memory:
    """HBM of one chip, in bytes, as the compiler assigned it."""

    arguments: int  # the state and this chip's share of the batch
    outputs: int  # the new state and the metrics
    aliased: int  # outputs written over donated arguments (counted in both above)
    temporaries: int  # activations, gradients, optimizer scratch: one pool, reused
    program: int  # the compiled code, which lives in HBM too
    compiler_peak: int  # the compiler's own peak of live buffers (it leaves some pools out)

    @property
    def total(self) -> int:
        """Everything allocated while the step runs: the arguments, the outputs that do not
        reuse them, the temporaries' pool and the program."""
        return self.arguments + self.outputs - self.aliased + self.temporaries + self.program


@dataclasses.dataclass
class Plan:
    """What one compile of the train step says (see the module docstring). Bytes are per chip;
    `model_flops` is the whole step on all chips, `compiled_flops` one chip's."""

    label: str
    topology: str
    device_kind: str
    chips: int
    mesh: dict[str, int]
    options: dict[str, object]
    global_batch: int
    seq_length: int
    capacity: int
    fits: bool
    shortfall: float  # bytes missing when it does not fit (0 when it fits)
    memory: Memory | None  # None when the compiler refused the step
    state: dict[str, int]  # params, opt_state per chip, from the shardings
    model_flops: float
    compiled_flops: float | None
    flops_note: str
    compiler_seconds: float | None
    time: estimate.StepTime | None
    mfu: float | None
    sequences_per_s: float | None
    compile_seconds: float
    refusal: str = ""  # the compiler's words when it could not fit the step
    hlo: str = dataclasses.field(default="", repr=False)

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("hlo")
        if self.memory is not None:
            out["memory"]["total"] = self.memory.total
        return out


def describe_options(mesh: dict[str, int], options: dict[str, object]) -> str:
    """`data=4 fsdp=1 tensor=1, remat, scan`: a plan's mesh and the options it set."""
    text = " ".join(f"{axis}={size}" for axis, size in mesh.items())
    flags = [name for name in ("remat", "scan_layers") if options.get(name)]
    if options.get("accum_steps", 1) > 1:
        flags.append(f"accum {options['accum_steps']}")
    return ", ".join([text, *flags])


def plan_step(config, target: topology.Topology, devices: list | None = None) -> Plan:
    """Compile `config`'s train step for `target` (its abstract devices, or `devices`)."""
    devices = topology.devices(target) if devices is None else devices
    planned = tasks.for_planning(config)
    run = loop.setup(planned, None, tasks.builder(config), devices)
    t = planned.train
    layout = sharding.batch_sharding(run.mesh)
    batch = {
        name: jax.ShapeDtypeStruct(shape, dtype, sharding=layout)
        for name, (shape, dtype) in tasks.train_batch(run.task, t.batch_size).items()
    }
    model = run.task.model_config
    mesh = {axis: int(size) for axis, size in run.mesh.shape.items()}
    options = {"remat": model.remat, "scan_layers": model.scan_layers, "accum_steps": t.accum_steps}
    kind = devices[0].device_kind
    memory_facts = flops.chip_memory(kind)
    capacity = int(memory_facts.hbm_gib * GIB) if memory_facts else 0
    common = dict(
        label=describe_options(mesh, options),
        topology=target.describe(),
        device_kind=kind,
        chips=len(devices),
        mesh=mesh,
        options=options,
        global_batch=t.batch_size,
        seq_length=batch["input_ids"].shape[-1],
        capacity=capacity,
        state=state_bytes(run.sharded.abstract),
        model_flops=run.task.step_flops(batch),
    )
    started = time.perf_counter()
    lowered = run.step_fn.lower(run.sharded.abstract, batch)
    try:
        compiled = lowered.compile()
    except jax.errors.JaxRuntimeError as e:
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        return _refused(str(e), capacity, time.perf_counter() - started, common)
    compile_seconds = time.perf_counter() - started
    return _compiled(compiled, run, capacity, compile_seconds, common)


def state_bytes(abstract_state) -> dict[str, int]:
    """Bytes of the state's parts on one chip (the first device's shards of each array)."""

    def total(tree) -> int:
        return sum(estimate.shard_bytes(leaf) for leaf in jax.tree.leaves(tree))

    return {"params": total(abstract_state.params), "opt_state": total(abstract_state.opt_state)}


def _compiled(compiled, run, capacity: int, compile_seconds: float, common) -> Plan:
    stats = compiled.memory_analysis()
    memory = Memory(
        arguments=int(stats.argument_size_in_bytes),
        outputs=int(stats.output_size_in_bytes),
        aliased=int(stats.alias_size_in_bytes),
        temporaries=int(stats.temp_size_in_bytes),
        program=int(stats.generated_code_size_in_bytes),
        compiler_peak=int(getattr(stats, "peak_memory_in_bytes", 0) or 0),
    )
    hlo = compiled.as_text()
    cost = compiled.cost_analysis()
    cost = (cost[0] if isinstance(cost, list) else cost) or {}
    counted = float(cost.get("flops", 0.0)) or None
    model = run.task.model_config
    chips = common["chips"]
    # Layers scanned or micro-batches accumulated: XLA's cost analysis counts a loop body once.
    looped = " while(" in hlo
    if looped or not counted:
        flops_note = "XLA counts a loop body once" if looped else ""
        per_chip, source = common["model_flops"] / chips, "model FLOPs"
        if model.remat and model.remat_policy == "nothing_saveable":
            # Each layer's forward pass runs again in the backward pass: a third more work.
            per_chip, source = per_chip * 4 / 3, "model FLOPs x 4/3 (remat)"
    else:
        flops_note, per_chip, source = "", counted, "compiled FLOPs"
    optimal = float(cost.get("optimal_seconds", -1.0))  # negative: no estimate
    compiler_seconds = optimal if optimal > 0 and not looped else None
    peak_rate, ici = estimate.chip_rates(common["device_kind"], model.dtype)
    sent = estimate.collective_bytes(
        run.sharded.abstract.params,
        common["mesh"],
        common["global_batch"],
        common["seq_length"],
        model,
    )
    step = estimate.step_time(
        per_chip, peak_rate, sent, ici, f"{source} at peak + collectives at ICI bandwidth"
    )
    if compiler_seconds:
        step = dataclasses.replace(step, seconds=compiler_seconds, basis="the compiler's estimate")
    return Plan(
        **common,
        fits=memory.total <= capacity,
        shortfall=max(0.0, float(memory.total - capacity)),
        memory=memory,
        compiled_flops=counted,
        flops_note=flops_note,
        compiler_seconds=compiler_seconds,
        time=step,
        mfu=common["model_flops"] / (chips * peak_rate * step.seconds),
        sequences_per_s=common["global_batch"] / step.seconds,
        compile_seconds=compile_seconds,
        hlo=hlo,
    )


def _refused(message: str, capacity: int, compile_seconds: float, common) -> Plan:
    """The plan of a step the compiler could not fit in HBM (its message names the sizes)."""
    line = next((ln.strip() for ln in message.splitlines() if "RESOURCE_EXHAUSTED" in ln), "")
    line = line.split("RESOURCE_EXHAUSTED:", 1)[-1].strip() or message.strip().splitlines()[0]
    return Plan(
        **common,
        fits=False,
        shortfall=shortfall(line) or 0.0,
        memory=None,
        compiled_flops=None,
        flops_note="",
        compiler_seconds=None,
        time=None,
        mfu=None,
        sequences_per_s=None,
        compile_seconds=compile_seconds,
        refusal=line,
    )


def _size(number: str, unit: str) -> float:
    return float(number) * UNITS[unit.upper()]


def shortfall(message: str) -> float | None:
    """Bytes by which a step exceeds HBM, from libtpu's out-of-memory message (either wording:
    "required ... (38.96G) exceeds available HBM (30.75G)" or "Used 40.4G of 15.5G hbm"), or
    None when it names no sizes."""
    size = r"([\d.]+)\s*([KMGT]?)i?B?"
    found = re.search(rf"\({size}\) exceeds available HBM \({size}\)", message, re.I)
    if found is None:
        found = re.search(rf"Used {size} of {size} hbm", message, re.I)
    if found is None:
        return None
    required, available = _size(*found.group(1, 2)), _size(*found.group(3, 4))
    return max(0.0, required - available)
