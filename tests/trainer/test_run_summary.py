"""The table a training run ends with: a short pretraining run (tiny, synthetic data) prints it
last on stdout with the run's own final numbers, while its evaluation draws a progress bar on
stderr when bars are asked for; the table puts a task's baselines beside its eval metrics and
names the best checkpoint a fine-tuning run kept."""

import re
import types

import jax
import pytest

from bert_jax import progress
from bert_jax.checkpoint import manager as checkpointing
from bert_jax.report_table import format_value
from bert_jax.tasks import pretraining
from bert_jax.tasks.base import StepPlan
from bert_jax.trainer import loop, run_summary
from configs import pretrain
from tests.checkpoint import fixtures as fx


def rows(table_text: str) -> dict[str, str]:
    """name -> the rest of its line, for the table's rows (title, rules and header left out):
    a name has single spaces only, the columns are 2 or more apart."""
    lines = table_text.splitlines()[2:-1]
    body = [line for line in lines if line.strip() and not set(line) <= {"-"}]
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in body if not line.startswith(" "))


def table_at_the_end(out: str, title: str) -> str:
    start = out.rindex(f"\n{title}\n") + 1
    text = out[start:].rstrip("\n")
    assert text.endswith("=" * 10), "the table is the last thing on stdout"
    return text


def test_a_short_pretraining_run_ends_with_its_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(progress.ENV, "1")  # bars also where stderr is not a terminal
    config = pretrain.get_config("tiny,runlocal")
    config.model.dtype = "float32"
    config.model.vocab_size = 128
    config.model.num_layers = 1  # the smallest model the run allows: the test is about output
    config.model.hidden_size = 32
    config.model.num_heads = 2
    config.data.max_seq_length = 32
    config.data.max_predictions_per_seq = 4
    config.data.synthetic = True
    config.train.num_steps = 4
    config.train.log_every_steps = 2
    config.train.eval_every_steps = 2
    config.checkpoint.save_every_steps = 2
    config.optimizer.warmup_steps = 1
    config.lock()
    summaries = loop.train_and_evaluate(config, str(tmp_path), pretraining.build)
    out, err = capsys.readouterr()

    text = table_at_the_end(out, "pretraining: summary")
    shown = rows(text)
    assert shown["steps"] == "4 of 4"
    assert shown["final train loss"] == format_value(float(summaries["train/loss"]))
    evaluated = {k.removeprefix("eval/"): v for k, v in summaries.items() if k.startswith("eval/")}
    assert {"mlm_accuracy", "nsp_accuracy"} <= set(evaluated)
    for name, value in evaluated.items():  # each eval metric, its baseline (if any) after it
        assert shown[f"eval {name}"].split()[0] == format_value(float(value))
    assert shown["checkpoints"] == str(tmp_path / "checkpoints")
    assert shown["time per step"].endswith(" s") and "seq/s" in shown["throughput"]
    # The stdout lines scripts read are still there, before the table.
    assert "eval step 4: mlm_loss=" in out[: out.index("pretraining: summary")]
    # The evaluation's bar (no length known for the held-out stream: a count, no ETA).
    assert "eval: " in err and "batch" in err


def fake_task(baselines=None):
    task = types.SimpleNamespace(name="glue/mnli")
    if baselines is not None:
        task.baselines = baselines
    return task


def fake_summaries(**values) -> loop.Summaries:
    summaries = loop.Summaries(values)
    summaries.finished, summaries.first_step, summaries.last_step = True, 6, 12
    summaries.rates = {
        "seconds_per_step": 0.25, "steps_per_second": 4.0, "sequences_per_second": 128.0,
        "tokens_per_second": 16384.0, "tflops_per_device": 100.0, "mfu": 0.2525,
    }  # fmt: skip
    return summaries


@pytest.fixture(scope="module")
def state():
    return jax.device_put(fx.random_state(fx.pretraining()))


def test_baselines_beside_split_metrics_and_the_best_checkpoint(tmp_path, state):
    best = checkpointing.Best("accuracy")
    with checkpointing.Checkpointer(tmp_path, fx.options(), fx.metadata(), best) as ckpt:
        for step, accuracy in ((6, 0.61), (9, 0.83), (12, 0.79)):
            ckpt.save(step, state, {}, metrics={"accuracy": accuracy})
            ckpt.wait()
    task = fake_task(lambda: {"accuracy": (0.3545, "majority class")})
    summaries = fake_summaries(
        **{"train/loss": 0.4321, "eval/dev_matched/accuracy": 0.79,
           "eval/dev_matched/loss": 0.55, "eval/dev_mismatched/accuracy": 0.8}
    )  # fmt: skip
    plan = StepPlan(num_steps=12, eval_every_steps=3, steps_per_epoch=4)
    text = run_summary.training_table(task, plan, summaries, 754.0, ckpt).render()
    assert text.splitlines()[2].split() == ["value", "baseline"]
    shown = rows(text)
    assert shown == {
        "steps": "12 of 12 (this run: 6 -> 12)",
        "epochs": "3.00",
        "wall time": "12 min 34 s",
        "time per step": "0.25 s",
        "throughput": "128.0 seq/s, 16,384 tokens/s, MFU 25.2%",
        "final train loss": "0.4321",
        "eval dev_matched/accuracy": "0.7900  0.3545 (majority class)",
        "eval dev_matched/loss": "0.5500",
        "eval dev_mismatched/accuracy": "0.8000  0.3545 (majority class)",
        "best checkpoint": "step 9 (accuracy 0.8300)",
        "checkpoints": str(tmp_path / "checkpoints"),
    }


def test_a_failing_baselines_leaves_the_column_out_with_a_note(capsys):
    def broken():
        raise KeyError("label counts")

    summaries = fake_summaries(**{"eval/accuracy": 0.5})
    summaries.finished = False
    plan = StepPlan(num_steps=100, eval_every_steps=10)
    text = run_summary.training_table(fake_task(broken), plan, summaries, 3.0, None).render()
    assert "baseline" not in text
    shown = rows(text)
    assert shown["steps"].startswith("12 of 100 (this run: 6 -> 12); stopped by a preemption")
    assert shown["eval accuracy"] == "0.5000" and shown["checkpoints"] == "none (no workdir)"
    assert "no baselines in the summary (KeyError" in capsys.readouterr().err


def test_baseline_lookup_by_split_then_metric():
    both = {"dev_matched/accuracy": (0.354, "m"), "dev_mismatched/accuracy": (0.352, "mm")}
    assert run_summary.baseline_of("dev_mismatched/accuracy", both) == (0.352, "mm")
    assert run_summary.baseline_of("accuracy", both, split="dev_matched") == (0.354, "m")
    assert run_summary.baseline_of("accuracy", both) is None
    single = {"accuracy": (0.68, "majority class")}
    assert run_summary.baseline_of("accuracy", single, split="dev") == (0.68, "majority class")
    assert run_summary.baseline_of("f1", single) is None
