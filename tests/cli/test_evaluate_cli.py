"""`bert-jax evaluate` on a copy of the session's tiny MRPC fine-tune
(`tests/tasks/finetuned_run.py`): it re-scores to the metrics the run stored at its
evaluations, rewrites the same outputs the run wrote, and refuses bad workdirs and splits with
one line (exit 2)."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from bert_jax import main as cli
from tests.tasks.finetuned_run import STEPS, finetuned_copy, stored_metrics

# Each module fixture trains a tiny run through the real command.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> pathlib.Path:
    return finetuned_copy(tmp_path_factory, "evaluate")


def _evaluate(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["evaluate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(capsys, *args: str) -> str:
    code, out, err = _evaluate(capsys, *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bert-jax evaluate: error: ")
    return lines[0]


def test_rescores_the_best_step_to_the_written_results(run, capsys):
    written = json.loads((run / "eval_results.json").read_text())
    predictions = (run / "predictions_dev.tsv").read_text()
    (run / "eval_results.json").unlink()
    (run / "predictions_dev.tsv").unlink()

    code, out, _ = _evaluate(capsys, f"--workdir={run}", "--json")
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["step"] == written["step"]
    assert summary["splits"]["dev"] == pytest.approx(written["splits"]["dev"], abs=1e-6)
    assert "dev: f1 " in out
    rewritten = json.loads((run / "eval_results.json").read_text())
    assert rewritten["splits"]["dev"] == pytest.approx(written["splits"]["dev"], abs=1e-6)
    kept = ("task", "step", "epoch", "init_from")
    assert {k: rewritten[k] for k in kept} == {k: written[k] for k in kept}
    assert rewritten["checkpoint"] == str(run / "checkpoints" / str(written["step"]))
    assert (run / "predictions_dev.tsv").read_text() == predictions


def test_rescores_a_given_step_to_its_stored_metrics(run, capsys):
    code, out, _ = _evaluate(capsys, f"--workdir={run}", f"--step={STEPS}", "--json")
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    stored = stored_metrics(run)[STEPS]  # what training's last evaluation measured
    assert summary["step"] == STEPS
    assert {k: v for k, v in summary["splits"]["dev"].items() if k != "examples"} == (
        pytest.approx(stored, abs=1e-6)
    )
    # The results file now describes that step.
    assert json.loads((run / "eval_results.json").read_text())["step"] == STEPS


def test_test_split_rewrites_the_submission(run, capsys, tmp_path):
    submission = run / "submission" / "MRPC.tsv"
    written = submission.read_text()
    shutil.rmtree(run / "submission")
    code, out, _ = _evaluate(capsys, f"--workdir={run}", "--split=test")
    assert code == 0 and "test: 7 predictions -> submission/MRPC.tsv" in out
    assert submission.read_text() == written

    # Another GLUE folder without MRPC's test file: skipped, one line, not an error.
    (tmp_path / "MRPC").mkdir()
    code, out, _ = _evaluate(capsys, f"--workdir={run}", "--split=test", f"--data_dir={tmp_path}")
    assert code == 0
    skipped = [line for line in out.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and str(tmp_path / "MRPC" / "test.tsv") in skipped[0]


def test_a_workdir_without_checkpoints(tmp_path, capsys):
    line = _one_error_line(capsys, f"--workdir={tmp_path}")
    assert f"no bert-jax checkpoint in {tmp_path}" in line


def test_a_pretraining_workdir(tmp_path, capsys):
    step = tmp_path / "checkpoints" / "5" / "metadata"
    step.mkdir(parents=True)
    (step / "metadata").write_text(json.dumps({"task": "pretraining", "model": {}}))
    line = _one_error_line(capsys, f"--workdir={tmp_path}")
    assert "pretraining run, not a fine-tuned one" in line


def test_an_unknown_split_or_step(run, capsys):
    line = _one_error_line(capsys, f"--workdir={run}", "--split=validation")
    assert "unknown split 'validation' for glue/mrpc (choose one of: dev test train)" in line
    line = _one_error_line(capsys, f"--workdir={run}", "--step=3")
    assert "no checkpoint of step 3 (steps: 2 4)" in line
