"""`bert-jax plot`: PNGs from a workdir's TensorBoard logs, local and gs://, one run or several."""

import pytest
from matplotlib import image
from tensorboardX import SummaryWriter

from bert_jax import paths
from bert_jax.cli import plot as plot_cli
from bert_jax.errors import UserError
from tests.gcs import reset_gcs_clients

pytest_plugins = ["tests.gcs"]


def _log_run(workdir, scale: float = 1.0) -> None:
    writer = SummaryWriter(logdir=f"{workdir}/tensorboard")
    for step in range(10, 110, 10):
        writer.add_scalar("train/loss", scale * 10 / step, step)
        writer.add_scalar("train/learning_rate", 1e-4 * (1 - step / 110), step)
        writer.add_scalar("train/sequences_per_second", 100.0, step)
    writer.add_scalar("eval/loss", scale * 0.2, 100)
    writer.add_scalar("eval/mlm_accuracy", 0.4, 100)
    writer.close()


def test_one_workdir_writes_its_plots_directory_and_prints_the_files(tmp_path, capsys):
    _log_run(tmp_path / "run")

    assert plot_cli.main([str(tmp_path / "run")]) == 0

    out = tmp_path / "run" / "plots"
    expected = [str(out / f"{name}.png") for name in ("loss", "accuracy", "learning_rate")]
    expected.append(str(out / "throughput.png"))
    assert capsys.readouterr().out.splitlines() == expected
    for path in expected:
        assert image.imread(path).ndim == 3


def test_several_workdirs_overlay_into_the_output_directory(tmp_path, capsys):
    _log_run(tmp_path / "a" / "run")
    _log_run(tmp_path / "b" / "run", scale=2.0)

    with pytest.raises(UserError, match="2 workdirs: pass --output=DIR"):
        plot_cli.main([str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run")])
    argv = [str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run"), f"--output={tmp_path}/cmp"]
    assert plot_cli.main(argv) == 0

    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == str(tmp_path / "cmp" / "loss.png")
    assert all(p.startswith(str(tmp_path / "cmp")) for p in printed) and len(printed) == 4


def test_a_workdir_without_event_files_is_a_one_line_error_naming_it(tmp_path):
    _log_run(tmp_path / "good")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as error:
        plot_cli.main([str(tmp_path / "good"), str(tmp_path / "empty"), f"--output={tmp_path}"])
    assert str(tmp_path / "empty") in str(error.value)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "loss.png").exists()


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as done:
        plot_cli.main(["--help"])
    assert done.value.code == 0
    assert "bert-jax plot runs/base runs/large --output=" in capsys.readouterr().out


def test_gcs_workdir_and_output(gcs_bucket, tmp_path, capsys):
    _log_run(tmp_path / "run")
    (local,) = (tmp_path / "run" / "tensorboard").iterdir()
    remote = f"{gcs_bucket}/runs/base"
    paths.path(f"{remote}/tensorboard/{local.name}").write_bytes(local.read_bytes())
    reset_gcs_clients()

    assert plot_cli.main([remote]) == 0

    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"{remote}/plots/loss.png"
    reset_gcs_clients()
    assert paths.path(printed[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
