"""Multi-process start-up: `jax.distributed.initialize` when this run spans several processes.

  explicit   --coordinator_address/--num_processes/--process_id, or the env variables
             JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID (GPU clusters, tests)
  detected   SLURM with several tasks, Open MPI with several ranks, or a Cloud TPU VM (JAX
             finds the workers of the slice itself; on a single-host TPU it is one process)
  otherwise  one process; nothing to do

Must run before anything touches a JAX device.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib

import jax

from bert_jax.errors import UserError

ENV = {
    "coordinator_address": "JAX_COORDINATOR_ADDRESS",
    "num_processes": "JAX_NUM_PROCESSES",
    "process_id": "JAX_PROCESS_ID",
}


def _launcher_detected() -> bool:
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ:
        return True
    if int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
        return True
    on_tpu_vm = importlib.util.find_spec("libtpu") is not None and (
        pathlib.Path("/dev/accel0").exists() or pathlib.Path("/dev/vfio/0").exists()
    )
    return on_tpu_vm and os.environ.get("JAX_PLATFORMS", "") in ("", "tpu")


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Join the multi-process run if there is one; True when jax.distributed was initialized."""
    given = {
        "coordinator_address": coordinator_address or os.environ.get(ENV["coordinator_address"]),
        "num_processes": num_processes
        if num_processes is not None
        else os.environ.get(ENV["num_processes"]),
        "process_id": process_id if process_id is not None else os.environ.get(ENV["process_id"]),
    }
    present = {k: v for k, v in given.items() if v not in (None, "")}
    # CPU collectives across processes go through gloo; harmless for GPU and TPU backends.
    if present and len(present) < 3:
        missing = ", ".join(f"--{k} (or {ENV[k]})" for k in given if k not in present)
        raise UserError(f"multi-process run needs all three settings; missing {missing}")
    if present:
        count, index = int(present["num_processes"]), int(present["process_id"])
        if not 0 <= index < count:
            raise UserError(f"--process_id {index} must be in [0, --num_processes {count})")
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(present["coordinator_address"], count, index)
        return True
    if _launcher_detected():
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize()
        return True
    return False
