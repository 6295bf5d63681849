"""`bert-jax evaluate --workdir` of a tiny fine-tuned MRPC run with progress bars asked for
(BERT_JAX_PROGRESS=1): each split's bar counts its batches against the known total (so it
shows an ETA) on stderr; stdout keeps its lines, then the summary table (the split's metrics as
eval_results.json holds them, the files written, the time), then the --json line last."""

import json
import re

import pytest

from bert_jax import main as cli
from bert_jax import progress
from bert_jax.report_table import format_value
from tests.tasks.finetuned_run import finetuned_copy

DEV_BATCHES = 3  # 20 dev examples in batches of 8


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return finetuned_copy(tmp_path_factory, "evaluate_summary")


def test_evaluate_shows_batches_then_ends_with_its_table(run, capsys, monkeypatch):
    monkeypatch.setenv(progress.ENV, "1")
    assert cli.main(["evaluate", f"--workdir={run}", "--json"]) == 0
    out, err = capsys.readouterr()

    # The first drawing already knows the total; a finished bar is cleared (leave=False).
    drawn = [part for part in re.split(r"[\r\n]", err) if part.startswith("dev: ")]
    assert drawn and drawn[0].startswith(f"dev:   0%|          | 0/{DEV_BATCHES} "), drawn

    lines = out.rstrip("\n").splitlines()
    summary = json.loads(lines[-1])  # still the last line
    start = lines.index("glue/mrpc: outputs of step " + f"{summary['step']:,}")
    table = lines[start:-1]
    assert table[1] == table[-1] == "=" * len(table[1])
    shown = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in table[2:-1])
    written = json.loads((run / "eval_results.json").read_text())["splits"]["dev"]
    for metric in ("f1", "accuracy", "loss"):
        assert shown[f"dev {metric}"].split()[0] == format_value(written[metric])
    assert shown["checkpoint"] == f"step {summary['step']} ({summary['checkpoint']})"
    assert shown["written"] == f"eval_results.json, predictions_dev.tsv in {run}"
    assert re.fullmatch(r"[\d.]+ s", shown["time"])
    assert "dev: f1 " in "\n".join(lines[:start])  # the per-split line, above the table
