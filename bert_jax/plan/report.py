"""A plan as people read it (the summary table, the ranked search table) and as files for later
inspection: `plan.txt` (what was printed), `plan.json` (every number), and the compiled HLO of
every step compiled, under `hlo/`.
"""

from __future__ import annotations

import json
import re

from bert_jax import paths
from bert_jax.plan import aot, search
from bert_jax.report_table import SummaryTable, align, duration

GIB = 2**30


def gib(count: float) -> str:
    """Bytes in GiB (MiB below one GiB, so a small model does not read 0.00)."""
    if abs(count) < GIB:
        return f"{count / 2**20:,.1f} MiB"
    return f"{count / GIB:,.2f} GiB"


def flop(count: float) -> str:
    """FLOPs in TFLOP (GFLOP below one TFLOP)."""
    return f"{count / 1e12:,.2f} TFLOP" if count >= 1e12 else f"{count / 1e9:,.2f} GFLOP"


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms" if seconds >= 1e-3 else f"{seconds * 1e3:.3f} ms"


def verdict(plan: aot.Plan) -> str:
    if plan.fits:
        return f"fits ({gib(plan.capacity - plan.memory.total)} to spare)"
    if plan.shortfall:
        return f"does not fit by {gib(plan.shortfall)}"
    return "does not fit"


def summary(plan: aot.Plan, title: str) -> SummaryTable:
    """The table of one plan (what `bert-jax plan` prints last)."""
    table = SummaryTable(title)
    per_chip = plan.global_batch // max(1, plan.mesh.get("data", 1) * plan.mesh.get("fsdp", 1))
    table.add("topology", f"{plan.topology}, {plan.device_kind}")
    table.add("mesh", plan.label)
    table.add(
        "global batch",
        f"{plan.global_batch:,} x {plan.seq_length} tokens ({per_chip:,} per batch shard)",
    )
    state = plan.state
    table.add(
        "state per chip", f"params {gib(state['params'])}, optimizer {gib(state['opt_state'])}"
    )
    if plan.memory is None:
        table.add("HBM per chip", f"more than {gib(plan.capacity)}: {plan.refusal}")
    else:
        m = plan.memory
        table.add("HBM per chip", f"{gib(m.total)} of {gib(plan.capacity)}")
        table.add("  arguments", f"{gib(m.arguments)} (state and batch)")
        table.add("  outputs", f"{gib(m.outputs)} ({gib(m.aliased)} reuse the donated state)")
        table.add("  temporaries", gib(m.temporaries))
        table.add("  program", gib(m.program))
    table.add("verdict", verdict(plan))
    table.add("model FLOPs per step", f"{flop(plan.model_flops)} (analytic, all chips)")
    if plan.compiled_flops is not None:
        table.add(
            "compiled FLOPs per step",
            f"{flop(plan.compiled_flops * plan.chips)} ({flop(plan.compiled_flops)} per chip"
            + (f"; {plan.flops_note})" if plan.flops_note else ")"),
        )
    if plan.time is not None:
        t = plan.time
        if plan.compiler_seconds is None:
            table.add("step time", f"{milliseconds(t.seconds)} estimated: {t.basis}")
            table.add("  note", "the compiler gives no step-time estimate for this step")
        else:
            table.add("step time", f"{milliseconds(t.seconds)} ({t.basis})")
        table.add("  compute at peak", milliseconds(t.compute_seconds))
        table.add(
            "  collectives",
            f"{milliseconds(t.collective_seconds)} ({t.collective_bytes / 1e9:,.2f} GB sent per "
            "chip, no overlap assumed)",
        )
        bound = (
            " (at most: the estimate runs every FLOP at peak)" if not plan.compiler_seconds else ""
        )
        table.add("MFU (implied)", f"{100 * plan.mfu:.1f}%{bound}")
        table.add("sequences/s", f"{plan.sequences_per_s:,.0f}")
    table.add("compiled in", duration(plan.compile_seconds))
    return table


def ranked(results: list, title: str) -> str:
    """The --search table: one row per candidate, best first."""
    header = ("#", "mesh, options", "HBM/chip", "verdict", "step", "MFU", "seq/s")
    rows = [header]
    for index, item in enumerate(results, 1):
        if isinstance(item, search.Skipped):
            rows.append((str(index), item.label, "-", f"skipped: {item.reason}", "", "", ""))
            continue
        memory = gib(item.memory.total) if item.memory else f"> {gib(item.capacity)}"
        timed = item.time is not None and item.fits
        rows.append(
            (
                str(index),
                item.label,
                memory,
                verdict(item),
                milliseconds(item.time.seconds) if timed else "",
                f"{100 * item.mfu:.1f}%" if timed else "",
                f"{item.sequences_per_s:,.0f}" if timed else "",
            )
        )
    lines = align(rows)
    width = max(len(line) for line in [title, *lines])
    return "\n".join([title, "=" * width, lines[0], "-" * width, *lines[1:], "=" * width])


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def write(workdir: str, text: str, record: dict, plans: list) -> list[str]:
    """plan.txt, plan.json and hlo/<mesh>.hlo.txt under `workdir`; returns what was written."""
    root = paths.path(workdir)
    (root / "hlo").mkdir(parents=True, exist_ok=True)
    written = [root / "plan.txt", root / "plan.json"]
    written[0].write_text(text + "\n")
    written[1].write_text(json.dumps(record, indent=1) + "\n")
    for plan in plans:
        if isinstance(plan, aot.Plan) and plan.hlo:
            path = root / "hlo" / f"{slug(plan.label)}.hlo.txt"
            path.write_text(plan.hlo)
            written.append(path)
    return [str(p) for p in written]
