"""`bert-jax plan --config=FILE.py:ARG --topology=NAME [--search] [--workdir=DIR]`

Compiles the train step a config would run for a TPU topology, on this machine (no TPU needed:
libtpu's compile-only client), and prints what the compiler says: HBM per chip, FLOPs, a step
time, MFU and whether it fits. The library side is `bert_jax/plan/`.
"""

from __future__ import annotations

import os
import sys

from bert_jax.cli import training
from bert_jax.cli.parser import command_parser
from bert_jax.errors import UserError

PROG = "bert-jax plan"

DESCRIPTION = """\
Plan a run before renting the pod: compile the train step that `bert-jax pretrain` (or
`finetune`) would run for a TPU topology, on this machine, and report per chip the HBM it needs
(arguments, outputs, temporaries) against the chip's, the FLOPs per step, an estimated step time,
the implied MFU and sequences/s, and whether it fits and by how much. Nothing runs and no TPU is
needed; the `libtpu` package is (pip install "jax[tpu]").

The state, shardings and step are those the trainer builds from the same config (mesh and batch
overrides included); pretraining plans synthetic batches of the configured shape, fine-tuning the
task's head on the architecture of --config.init_from or --config.model.size. --search compiles
every data x fsdp x tensor mesh of the topology (again with model.remat where a mesh does not
fit) and ranks them, fastest first. Compiling takes minutes per step for BERT-base and more for
BERT-large on one CPU core; a search multiplies that by the number of meshes (up to a dozen)."""

EPILOG = """\
topologies: TPU v4, v5e, v5p, v6e as GENERATION:SHAPE in chips (v4:2x2x1, v5e:4x4, v5p:4x4x4,
v6e:8x8) or a Cloud TPU accelerator type (v4-8, v5litepod-16, v5e-16, v5p-32, v6e-16: v4 and
v5p count TensorCores, two per chip).

The step time is the compiler's estimate where libtpu gives one; otherwise it is derived and
labelled so: FLOPs per chip at the chip's bfloat16 peak plus the collectives the shardings imply
at the chip's ICI bandwidth, without overlap (bert_jax/plan/estimate.py).

--workdir keeps plan.txt (what is printed), plan.json (every number) and hlo/*.hlo.txt (each
compiled step's HLO, for inspection)."""

EXAMPLES = [
    "bert-jax plan --config=configs/pretrain.py:base --topology=v5e:4x4",
    "bert-jax plan --config=configs/pretrain.py:large,phase2 --topology=v5p:4x4x4 \\\n"
    "    --config.mesh.data=1 --config.mesh.fsdp=-1      # seq 512, fsdp over 64 chips",
    "bert-jax plan --config=configs/pretrain.py:large --topology=v4-8 --search --workdir=plans/l",
    "bert-jax plan --config=configs/squad.py:v1.1 --config.model.size=base --topology=v5e-16",
]


def _parser():
    p = command_parser(PROG, DESCRIPTION, EXAMPLES, epilog=EPILOG, add_help=False)
    p.usage = "%(prog)s --config=FILE.py[:ARG] --topology=NAME [--config.FIELD=VALUE ...] [options]"
    p.add_argument(
        "-h", "--help", action="store_true",
        help="show this help and exit; after --config=FILE.py:ARG it shows that config's values",
    )  # fmt: skip
    p.add_argument("--config", metavar="FILE.py[:ARG]", help=training.CONFIG_HELP)
    p.add_argument(
        "--topology", metavar="NAME", help="TPU topology to compile for, e.g. v5e:4x4 or v5p-32"
    )
    p.add_argument(
        "--search", action="store_true",
        help="compile every data x fsdp x tensor mesh (and remat where needed), ranked",
    )  # fmt: skip
    p.add_argument(
        "--workdir", metavar="DIR",
        help="where plan.txt, plan.json and the compiled HLO go (local or gs://); none: print only",
    )  # fmt: skip
    return p


def parse(argv: list[str]):
    args = training.parse_config(argv, _parser())  # the training commands' --config rules
    if not args.topology:
        raise UserError("--topology is required (e.g. v5e:4x4, v4-8, v5p-32)")
    return args


def _title(config, target) -> str:
    from bert_jax.plan import tasks

    what = config.task if tasks.is_finetuning(config) else "pretraining"
    size = config.model.size or "init_from's architecture"
    return f"bert-jax plan: {what}, {size}, on {target.describe()}"


def main(argv: list[str]) -> int:
    args = parse(argv)
    # The plan compiles for abstract devices: this process never needs (or takes) a local
    # accelerator, so it can run beside a training run on the same host.
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from bert_jax.plan import aot, report, search, topology

    target = topology.parse(args.topology)
    title = _title(args.config, target)
    if args.search:
        results = search.search(args.config, target)
        text = report.ranked(results, title + ": --search")
        plans = results
    else:
        plan = aot.plan_step(args.config, target)
        text = report.summary(plan, title).render()
        plans = [plan]
    print("\n" + text, flush=True)
    if args.workdir:
        record = {
            "command": ["bert-jax", "plan", *argv],
            "topology": target.describe(),
            "plans": [p.to_json() for p in plans],
        }
        written = report.write(args.workdir, text, record, plans)
        print(f"wrote {written[0]}, {written[1]} and {len(written) - 2} HLO files", file=sys.stderr)
    return 0
