"""TPU topologies by name, as abstract devices to compile for on any machine.

A name is a chip generation and its slice shape in chips, `v5e:4x4`, `v4:2x2x1`, `v5p:4x4x4`,
`v6e:8x8`, or a Cloud TPU accelerator type, `v5litepod-16`, `v5e-16`, `v4-8`, `v5p-32`, `v6e-16`
(the number counts chips on v5e and v6e, TensorCores, two per chip, on v4 and v5p). The devices
come from libtpu's compile-only client (`jax.experimental.topologies`): no TPU is needed or
touched, only the `libtpu` package (`pip install "jax[tpu]"`).

v4 and v5p run one device per chip over both TensorCores ("megacore"), as JAX uses them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import sys
import tempfile

from bert_jax.errors import UserError

INSTALL = 'pip install "jax[tpu]"'


@dataclasses.dataclass(frozen=True)
class Generation:
    """One TPU generation as libtpu names it, with its slice geometry."""

    libtpu_name: str  # the prefix of libtpu's topology names
    chip_config: str  # "megacore": one device per chip over both TensorCores
    dims: int  # 2: a 2D torus (shape AxB), 3: a 3D torus (AxBxC)
    cores_per_chip_in_type: int  # what the number of an accelerator type counts per chip


GENERATIONS = {
    "v4": Generation("v4", "megacore", 3, 2),
    "v5e": Generation("v5e", "default", 2, 1),
    "v5p": Generation("v5p", "megacore", 3, 2),
    "v6e": Generation("v6e", "default", 2, 1),
}
# Accelerator-type prefixes (Cloud TPU's names) -> generation.
TYPE_PREFIXES = {"v4": "v4", "v5litepod": "v5e", "v5e": "v5e", "v5p": "v5p", "v6e": "v6e"}
CHIPS_PER_HOST_BOUNDS = (2, 2, 1)  # four chips per host, as every generation here is sold

EXAMPLES = "v4:2x2x1, v5e:4x4, v5p:4x4x4, v6e:8x8, or v4-8, v5litepod-16, v5p-32, v6e-16"


@dataclasses.dataclass(frozen=True)
class Topology:
    name: str  # as given
    generation: str  # v4, v5e, v5p, v6e
    shape: tuple[int, ...]  # chips along each torus axis

    @property
    def chips(self) -> int:
        return math.prod(self.shape)

    @property
    def libtpu_name(self) -> str:
        return f"{GENERATIONS[self.generation].libtpu_name}:{'x'.join(map(str, self.shape))}"

    def describe(self) -> str:
        return f"TPU {self.generation} {'x'.join(map(str, self.shape))} ({self.chips} chips)"


def standard_shape(chips: int, dims: int) -> tuple[int, ...] | None:
    """The slice shape Cloud TPU gives a power-of-two chip count: from 2x2 (x1), double the
    shortest axis (the last of equals) until the count is reached: 16 chips are 4x4 in 2D and
    2x2x4 in 3D, 64 are 8x8 and 4x4x4. None for a count that is not one of those."""
    if chips == 1:
        return (1,) * dims
    if chips < 4 or chips & (chips - 1):
        return None
    shape = [2, 2] + [1] * (dims - 2)
    while math.prod(shape) < chips:
        shortest = min(shape)
        axis = max(i for i, size in enumerate(shape) if size == shortest)
        shape[axis] *= 2
    return tuple(shape)


def parse(name: str) -> Topology:
    """A `Topology` from either naming (module docstring); a UserError naming the forms."""
    text = name.strip().lower()
    if match := re.fullmatch(r"(v\w+?):(\d+(?:x\d+)*)", text):
        generation, shape_text = match.groups()
        if generation not in GENERATIONS:
            raise _unknown(name)
        shape = tuple(int(n) for n in shape_text.split("x"))
        dims = GENERATIONS[generation].dims
        if len(shape) != dims or min(shape) < 1:
            raise UserError(
                f"topology {name!r}: TPU {generation} slices have {dims} axes "
                f"(e.g. {generation}:{'x'.join(['2'] * 2 + ['1'] * (dims - 2))})"
            )
        return Topology(name, generation, shape)
    if match := re.fullmatch(r"([a-z0-9]+?)-(\d+)", text):
        prefix, count = match.group(1), int(match.group(2))
        if prefix not in TYPE_PREFIXES:
            raise _unknown(name)
        generation = TYPE_PREFIXES[prefix]
        spec = GENERATIONS[generation]
        chips, rest = divmod(count, spec.cores_per_chip_in_type)
        shape = standard_shape(chips, spec.dims) if not rest else None
        if shape is None:
            raise UserError(
                f"topology {name!r}: no standard {generation} slice of {count} "
                f"{'TensorCores' if spec.cores_per_chip_in_type > 1 else 'chips'}; "
                f"give its shape, e.g. {generation}:{'x'.join(['4'] * spec.dims)}"
            )
        return Topology(name, generation, shape)
    raise _unknown(name)


def _unknown(name: str) -> UserError:
    return UserError(
        f"unknown topology {name!r}: TPU generations {', '.join(GENERATIONS)} as "
        f"GENERATION:SHAPE or an accelerator type ({EXAMPLES})"
    )


def devices(topology: Topology) -> list:
    """The topology's abstract devices (one per chip) from libtpu's compile-only client."""
    try:
        import libtpu  # noqa: F401  (only to say what is missing)
    except ImportError:
        raise UserError(f"compiling for a TPU topology needs libtpu: {INSTALL}") from None
    from jax.experimental import topologies

    spec = GENERATIONS[topology.generation]
    shape = (*topology.shape, 1)[:3]
    bounds = tuple(min(b, s) for b, s in zip(CHIPS_PER_HOST_BOUNDS, shape, strict=True))
    with _libtpu_offline():
        try:
            description = topologies.get_topology_desc(
                platform="tpu",
                topology_name=topology.libtpu_name,
                chip_config_name=spec.chip_config,
                chips_per_host_bounds=bounds,
            )
        except Exception as e:  # libtpu's errors are long; their first line says what failed
            first = (str(e).strip() or type(e).__name__).splitlines()[0]
            raise UserError(f"libtpu refused topology {topology.libtpu_name}: {first}") from None
    found = list(description.devices)
    if len(found) != topology.chips:
        raise UserError(
            f"libtpu made {len(found)} devices for {topology.describe()}; expected one per chip"
        )
    return found


# Read by libtpu when it first loads, here for its compile-only client:
OFFLINE_ENVIRONMENT = {
    # That client opens no chip, so the one-process-per-host lock that guards the chips must
    # not refuse it while a training run (or another plan) holds the lock.
    "ALLOW_MULTIPLE_LIBTPU_LOAD": "1",
    # Off a TPU VM there is no metadata server to ask for the slice's hosts.
    "TPU_SKIP_MDS_QUERY": "1",
    "TPU_WORKER_HOSTNAMES": "localhost",
}


@contextlib.contextmanager
def _libtpu_offline():
    """OFFLINE_ENVIRONMENT while libtpu loads (restored after), and its start-up warnings about
    the absent TPU VM kept off the terminal (file descriptor 2 goes to a temporary file, which
    is dropped: libtpu's errors come back as exceptions)."""
    saved = {key: os.environ.get(key) for key in OFFLINE_ENVIRONMENT}
    os.environ.update(OFFLINE_ENVIRONMENT)
    sys.stderr.flush()
    original = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(original, 2)
            os.close(original)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
