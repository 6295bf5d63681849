"""--search's candidates and ranking, with the compile replaced by a stand-in whose verdicts are
set here (compiling a dozen meshes for real takes minutes: tests/plan/test_aot.py compiles)."""

from bert_jax.cli import config_args
from bert_jax.errors import UserError
from bert_jax.plan import aot, estimate, report, search, topology
from tests.conftest import REPO


def test_meshes_are_every_factorisation_with_tensor_within_a_host():
    found = search.meshes(16)
    assert {(m["data"], m["fsdp"], m["tensor"]) for m in found} == {
        (16, 1, 1), (8, 2, 1), (4, 4, 1), (2, 8, 1), (1, 16, 1),
        (8, 1, 2), (4, 2, 2), (2, 4, 2), (1, 8, 2),
        (4, 1, 4), (2, 2, 4), (1, 4, 4),
    }  # fmt: skip
    assert found[0] == {"data": 16, "fsdp": 1, "tensor": 1}  # plain data parallelism first
    assert [(m["data"], m["fsdp"], m["tensor"]) for m in search.meshes(1)] == [(1, 1, 1)]


def fake_plan(config, target, devices):
    """fsdp=1 does not fit without remat; tensor=4 does not divide; more fsdp is slower."""
    mesh = {a: int(config.mesh[a]) for a in ("data", "fsdp", "tensor")}
    if mesh["tensor"] == 4:
        raise UserError("heads 2 do not divide by mesh tensor=4")
    remat = bool(config.model.remat)
    fits = mesh["fsdp"] > 1 or remat
    seconds = 0.1 * mesh["fsdp"] + 0.05 * remat + 0.01 * mesh["tensor"]
    options = {"remat": remat, "scan_layers": False, "accum_steps": 1}
    short = 0.0 if fits else 2**30 * mesh["tensor"]
    return aot.Plan(
        label=aot.describe_options(mesh, options), topology=target.describe(),
        device_kind="TPU v5 lite", chips=4, mesh=mesh, options=options, global_batch=32,
        seq_length=128, capacity=16 * 2**30, fits=fits, shortfall=short,
        memory=aot.Memory(1, 1, 1, 1, 1, 1), state={"params": 1, "opt_state": 2},
        model_flops=1e12, compiled_flops=None, flops_note="", compiler_seconds=None,
        time=estimate.StepTime(seconds, seconds, 0.0, 0.0, "test"), mfu=0.5,
        sequences_per_s=32 / seconds, compile_seconds=1.0,
    )  # fmt: skip


def test_search_retries_with_remat_and_ranks_fitting_steps_fastest_first(monkeypatch):
    monkeypatch.setattr(topology, "devices", lambda target: [None] * 4)
    monkeypatch.setattr(aot, "plan_step", fake_plan)
    config = config_args.load(f"{REPO}/configs/pretrain.py:tiny", [])
    logged = []
    results = search.search(config, topology.parse("v5e:2x2"), logged.append)
    labels = [r.label for r in results]
    assert labels == [
        "data=4 fsdp=1 tensor=1, remat",  # 0.16 s
        "data=2 fsdp=1 tensor=2, remat",  # 0.17 s
        "data=2 fsdp=2 tensor=1",  # 0.21 s
        "data=1 fsdp=2 tensor=2",  # 0.22 s
        "data=1 fsdp=4 tensor=1",  # 0.41 s
        "data=4 fsdp=1 tensor=1",  # does not fit, 1 GiB short
        "data=2 fsdp=1 tensor=2",  # does not fit, 2 GiB short
        "data=1 fsdp=1 tensor=4",  # skipped
    ]
    assert isinstance(results[-1], search.Skipped) and "do not divide" in results[-1].reason
    assert config.mesh.data == -1 and not config.model.remat  # copies were changed, not it
    table = report.ranked(results, "t")
    assert "skipped: heads 2 do not divide" in table and "does not fit by 1.00 GiB" in table
    assert sum("again with model.remat" in line for line in logged) == 2


def test_hlo_files_are_named_by_mesh():
    assert report.slug("data=4 fsdp=1 tensor=1, remat") == "data_4_fsdp_1_tensor_1_remat"
