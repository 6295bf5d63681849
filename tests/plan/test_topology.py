"""TPU topology names -> chip shapes, checked against the slice shapes Cloud TPU documents for
its accelerator types, and libtpu's devices for them."""

import importlib.util
import sys

import pytest

from bert_jax.errors import UserError
from bert_jax.plan import topology

# accelerator type -> shape, as the Cloud TPU pages list them
PUBLISHED = {
    "v4-8": (2, 2, 1),
    "v4-16": (2, 2, 2),
    "v4-32": (2, 2, 4),
    "v4-64": (2, 4, 4),
    "v4-128": (4, 4, 4),
    "v4-512": (4, 8, 8),
    "v5p-32": (2, 2, 4),
    "v5p-2048": (8, 8, 16),
    "v5litepod-1": (1, 1),
    "v5litepod-4": (2, 2),
    "v5litepod-8": (2, 4),
    "v5e-16": (4, 4),
    "v5litepod-128": (8, 16),
    "v6e-64": (8, 8),
    "v6e-256": (16, 16),
}


@pytest.mark.parametrize(("name", "shape"), PUBLISHED.items())
def test_accelerator_types_get_their_published_shapes(name, shape):
    assert topology.parse(name).shape == shape


def test_generation_and_shape_names():
    t = topology.parse("v5p:4x4x4")
    assert (t.generation, t.shape, t.chips, t.libtpu_name) == ("v5p", (4, 4, 4), 64, "v5p:4x4x4")
    assert topology.parse("V5E:4x4").describe() == "TPU v5e 4x4 (16 chips)"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("v3:4x4", "unknown topology 'v3:4x4': TPU generations v4, v5e, v5p, v6e"),
        ("h100-8", "unknown topology 'h100-8'"),
        ("v5e:4x4x1", "TPU v5e slices have 2 axes"),
        ("v4:4x4", "TPU v4 slices have 3 axes"),
        ("v5p-24", "no standard v5p slice of 24 TensorCores"),
        ("v5e-12", "no standard v5e slice of 12 chips"),
    ],
)
def test_bad_names_say_which_exist(name, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(")) as caught:
        topology.parse(name)
    assert "\n" not in str(caught.value)


def test_libtpu_devices_one_per_chip():
    if importlib.util.find_spec("libtpu") is None:
        pytest.skip('libtpu is not installed (pip install "jax[tpu]")')
    for name, kind in [("v4:2x2x1", "TPU v4"), ("v5e:4x4", "TPU v5 lite"), ("v5p-16", "TPU v5")]:
        target = topology.parse(name)
        devices = topology.devices(target)
        assert len(devices) == target.chips and devices[0].device_kind == kind


def test_missing_libtpu_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "libtpu", None)  # import fails
    with pytest.raises(UserError, match=r'needs libtpu: pip install "jax\[tpu\]"'):
        topology.devices(topology.parse("v5e:2x2"))


def test_chip_facts_are_the_documented_ones():
    """HBM GiB and ICI GB/s (both directions) as the Cloud TPU pages give them (v4's ICI: six
    links at 50 GB/s each way, from the TPU v4 paper)."""
    from bert_jax.trainer import flops

    documented = {
        "TPU v4": (32, 600),
        "TPU v5 lite": (16, 400),
        "TPU v5": (95, 1200),
        "TPU v6 lite": (32, 800),
    }
    for kind, facts in documented.items():
        chip = flops.chip_memory(kind)
        assert (chip.hbm_gib, chip.ici_gbps) == facts, kind
    assert flops.chip_memory("cpu") is None
