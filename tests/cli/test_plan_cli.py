"""`bert-jax plan` as a user runs it: a plan of BERT-tiny for a v4-8 printed as a table and kept
in the workdir (text, JSON, compiled HLO), and every mistake one line with exit status 2: an
unknown topology (naming the known ones), a mesh that is not the topology's chip count, libtpu
missing (naming the install)."""

import importlib.util
import json
import sys

import pytest

from bert_jax import main as cli
from tests.conftest import REPO

TINY = [
    f"--config={REPO}/configs/pretrain.py:tiny",
    "--config.model.vocab_size=1024",
    "--config.train.batch_size=32",
]
needs_libtpu = pytest.mark.skipif(
    importlib.util.find_spec("libtpu") is None,
    reason='libtpu is not installed (pip install "jax[tpu]")',
)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and err.startswith("bert-jax plan: error: "), err
    return err


@needs_libtpu
def test_plan_prints_the_table_and_keeps_it_with_the_hlo(capsys, tmp_path):
    code, out, err = run(capsys, *TINY, "--topology=v4-8", f"--workdir={tmp_path}")
    assert code == 0, err
    assert "bert-jax plan: pretraining, tiny, on TPU v4 2x2x1 (4 chips)" in out
    record = json.loads((tmp_path / "plan.json").read_text())
    (plan,) = record["plans"]
    assert plan["mesh"] == {"data": 4, "fsdp": 1, "tensor": 1} and plan["fits"]
    assert record["command"][:2] == ["bert-jax", "plan"]
    total = plan["memory"]["total"]
    assert f"HBM per chip             {total / 2**20:,.1f} MiB of 32.00 GiB" in out
    assert "verdict                  fits (" in out and "MFU (implied)" in out
    assert (tmp_path / "plan.txt").read_text().strip() == out.strip()
    (hlo,) = (tmp_path / "hlo").iterdir()
    assert hlo.name == "data_4_fsdp_1_tensor_1.hlo.txt" and "ENTRY" in hlo.read_text()


def test_an_unknown_topology_lists_the_known_names(capsys):
    err = one_line_error(*run(capsys, *TINY, "--topology=v3-8"))
    assert "unknown topology 'v3-8': TPU generations v4, v5e, v5p, v6e" in err
    assert "v5litepod-16" in err


@needs_libtpu
def test_a_mesh_that_is_not_the_chip_count(capsys):
    err = one_line_error(*run(capsys, *TINY, "--topology=v5e:2x2", "--config.mesh.data=8"))
    assert "mesh data=8 x fsdp=1 x tensor=1 = 8 does not match 4 devices" in err


def test_libtpu_missing_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "libtpu", None)  # its import fails
    err = one_line_error(*run(capsys, *TINY, "--topology=v5e:2x2"))
    assert 'needs libtpu: pip install "jax[tpu]"' in err


def test_config_and_topology_are_required(capsys):
    err = one_line_error(*run(capsys, *TINY))
    assert "--topology is required" in err
    assert "--config=FILE.py[:ARG] is required" in one_line_error(*run(capsys, "--topology=v4-8"))
