"""`plan_step` compiles the trainer's own step for TPU topologies (libtpu's compile-only client,
no TPU) and reports per-chip HBM, FLOPs and a time; checked against references computed here
without the plan: the model's parameter count from `jax.eval_shape`, the analytic FLOP model,
and the chip's HBM.

Compiling for a TPU is slow (minutes for BERT-base on one core), so the sharding and
out-of-memory checks plan BERT-tiny with a 1,024-token vocabulary, each topology once per module;
BERT-base at 128 tokens and batch 256 (layers scanned, so one layer is compiled) is planned once
on v4:2x2x1 and once on v5e:4x4, about 2 minutes of one core each.
"""

import importlib.util
import math

import jax
import pytest

from bert_jax.cli import config_args
from bert_jax.model.heads import BertForPreTraining
from bert_jax.plan import aot, report, topology
from bert_jax.tasks import pretraining
from tests.conftest import REPO

if importlib.util.find_spec("libtpu") is None:
    pytest.skip('libtpu is not installed (pip install "jax[tpu]")', allow_module_level=True)

SMALL = ["--config.model.vocab_size=1024", "--config.train.batch_size=32"]
GIB = 2**30


def tiny(*overrides: str):
    return config_args.load(f"{REPO}/configs/pretrain.py:tiny", [*SMALL, *overrides])


def param_bytes(config, vocab: int = 1024) -> int:
    """All parameters of the model, from its own init (float32)."""
    d = config.data
    model = pretraining.bert_config(
        config.model, vocab, d.max_seq_length, d.max_predictions_per_seq
    )
    task = pretraining.PretrainingTask(model, d.max_seq_length, d.max_predictions_per_seq)
    inputs = task.model_inputs(task.example_batch())
    shapes = jax.eval_shape(lambda: BertForPreTraining(model).init(jax.random.PRNGKey(0), **inputs))
    return 4 * sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))


@pytest.fixture(scope="module")
def v5e():
    """Data parallel over the 16 chips of a v5e-16."""
    return aot.plan_step(tiny(), topology.parse("v5e:4x4"))


@pytest.fixture(scope="module")
def v4_fsdp():
    """fsdp over the 4 chips of a v4-8."""
    return aot.plan_step(
        tiny("--config.mesh.data=1", "--config.mesh.fsdp=4"), topology.parse("v4:2x2x1")
    )


def test_compiles_and_reports_numbers(v5e):
    assert (v5e.chips, v5e.mesh, v5e.device_kind) == (
        16,
        {"data": 16, "fsdp": 1, "tensor": 1},
        "TPU v5 lite",
    )
    assert v5e.capacity == 16 * GIB and v5e.fits
    m = v5e.memory
    assert m.temporaries > 0 and m.aliased <= m.outputs and m.total < v5e.capacity
    # Replicated: every chip holds the whole state, params and two Adam moments.
    assert v5e.state["params"] == param_bytes(tiny())
    assert v5e.state["opt_state"] >= 2 * v5e.state["params"]
    assert m.arguments >= sum(v5e.state.values())
    # XLA counts the element-wise work the analytic model leaves out: a few % more.
    assert 1.0 <= v5e.compiled_flops * v5e.chips / v5e.model_flops <= 1.15
    assert v5e.time.seconds > 0 and 0 < v5e.mfu < 1
    assert v5e.sequences_per_s == pytest.approx(32 / v5e.time.seconds)
    assert "ENTRY" in v5e.hlo and "fits (" in report.summary(v5e, "plan").render()


def test_fsdp_over_all_chips_holds_a_quarter_of_the_params_each(v4_fsdp, v5e):
    assert v4_fsdp.device_kind == "TPU v4" and v4_fsdp.chips == 4  # megacore: one per chip
    whole = param_bytes(tiny())
    # LayerNorm scales and biases stay whole (a few % of BERT-tiny): about 1/4 each.
    assert v4_fsdp.state["params"] * 4 / whole == pytest.approx(1.0, rel=0.1)
    # The compiler agrees the state shrinks, though by less than 4: a TPU lays an array out in
    # tiles of 128 along its last axis, so a 128-wide axis split 4 ways still takes 128.
    assert v4_fsdp.memory.arguments < v5e.memory.arguments / 2
    # Sharded parameters are gathered for the forward and backward passes: collectives.
    assert v4_fsdp.time.collective_bytes > 0


def test_an_oversized_batch_does_not_fit_by_the_compilers_figure():
    plan = aot.plan_step(tiny("--config.train.batch_size=262144"), topology.parse("v5e:2x2"))
    assert not plan.fits and plan.memory is None and "HBM" in plan.refusal
    assert plan.shortfall > 16 * GIB  # 65,536 sequences per chip need several times its HBM
    assert f"does not fit by {plan.shortfall / GIB:,.2f} GiB" in report.summary(plan, "p").render()


def test_shortfall_reads_both_wordings():
    assert aot.shortfall(
        "required for HLO temporaries (38.96G) exceeds available HBM (30.75G)"
    ) == (pytest.approx((38.96 - 30.75) * GIB))
    assert aot.shortfall("Used 40.5G of 15.5G hbm. Exceeded hbm capacity by 25G.") == 25 * GIB
    assert aot.shortfall("no sizes here") is None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["v4:2x2x1", "v5e:4x4"])
def test_bert_base_seq128_batch256(name):
    config = config_args.load(
        f"{REPO}/configs/pretrain.py:base", ["--config.model.scan_layers=True"]
    )
    plan = aot.plan_step(config, topology.parse(name))
    assert plan.fits and plan.global_batch == 256 and plan.seq_length == 128
    assert plan.state["params"] == param_bytes(config, vocab=30522)  # replicated
    assert plan.time.seconds > 0 and 0 < plan.mfu < 1
