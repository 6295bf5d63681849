"""Figures from logged scalars: which groups, panels and lines each run yields, and the PNGs."""

import numpy as np
from matplotlib import image

from bert_jax.trainer import plot
from bert_jax.trainer.events import Series


def _series(steps, start=1.0):
    steps = tuple(steps)
    return Series(steps, tuple(start / (1 + 0.1 * i) for i in range(len(steps))))


TRAIN_STEPS = range(10, 210, 10)
EVAL_STEPS = (100, 200)


def _pretraining_run(peak_known: bool = True) -> dict[str, Series]:
    run = {}
    for metric in ("loss", "mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy"):
        run[f"train/{metric}"] = _series(TRAIN_STEPS)
        run[f"eval/{metric}"] = _series(EVAL_STEPS)
    for metric in ("learning_rate", "grad_norm", "sequences_per_second", "tokens_per_second"):
        run[f"train/{metric}"] = _series(TRAIN_STEPS)
    rate = ("mfu", "tflops_per_device") if peak_known else ("gflops_per_device",)
    run.update({f"train/{metric}": _series(TRAIN_STEPS) for metric in rate})
    return run


def _panels(figure) -> dict[str, list]:
    """Panel title (or the figure's title for a single panel) -> its lines."""
    axes = figure.get_axes()
    if len(axes) == 1:
        return {figure.get_suptitle(): axes[0].get_lines()}
    return {ax.get_title(): ax.get_lines() for ax in axes}


def test_one_pretraining_run_gives_every_group_with_train_and_eval_on_the_same_panels():
    figures = plot.build_figures([("base", _pretraining_run())])

    assert list(figures) == ["loss", "accuracy", "learning_rate", "grad_norm", "throughput", "mfu"]
    loss = _panels(figures["loss"])
    assert list(loss) == ["loss (total)", "MLM loss", "NSP loss"]
    for lines in loss.values():
        assert [line.get_label() for line in lines] == ["train", "eval"]
        assert tuple(lines[0].get_xdata()) == tuple(TRAIN_STEPS)
        assert tuple(lines[1].get_xdata()) == EVAL_STEPS
    accuracy = _panels(figures["accuracy"])
    assert list(accuracy) == ["MLM accuracy (masked tokens)", "NSP accuracy"]
    assert all(len(lines) == 2 for lines in accuracy.values())
    # Single-panel groups: one train line each, titled by what it measures.
    (lr_axes,) = figures["learning_rate"].get_axes()
    assert figures["learning_rate"].get_suptitle() == "Learning rate: base"
    assert [line.get_label() for line in lr_axes.get_lines()] == ["train"]
    assert figures["throughput"].get_suptitle() == "Training throughput: base"
    (mfu_axes,) = figures["mfu"].get_axes()
    assert mfu_axes.get_ylabel() == "MFU" and len(mfu_axes.get_lines()) == 1
    for figure in figures.values():
        for ax in figure.get_axes():
            assert ax.get_xlabel() == "step" and ax.get_ylabel()
        assert figure.legends, "every figure has a legend"


def test_values_are_drawn_as_logged():
    run = {"train/loss": Series((5, 10, 15), (3.5, 2.25, 2.0))}
    (ax,) = plot.build_figures([("r", run)])["loss"].get_axes()
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [5, 10, 15])
    np.testing.assert_array_equal(line.get_ydata(), [3.5, 2.25, 2.0])


def test_groups_without_data_are_skipped_and_gflops_stand_in_for_an_unknown_peak():
    run = {
        "train/loss": _series(TRAIN_STEPS),
        "train/gflops_per_device": _series(TRAIN_STEPS),
        "train/steps_per_second": _series(TRAIN_STEPS),  # not drawn
    }
    figures = plot.build_figures([("cpu", run)])
    assert list(figures) == ["loss", "mfu"]
    (ax,) = figures["mfu"].get_axes()
    assert ax.get_ylabel() == "GFLOP/s"
    assert plot.build_figures([("nothing", {"train/steps_per_second": _series((1,))})]) == {}


def test_two_runs_overlay_with_their_names_in_the_legend():
    figures = plot.build_figures(
        [("base", _pretraining_run()), ("cpu", _pretraining_run(peak_known=False))]
    )
    loss = _panels(figures["loss"])
    for lines in loss.values():
        labels = [line.get_label() for line in lines]
        assert labels == ["base train", "base eval", "cpu train", "cpu eval"]
        # One colour per run, one line style per split.
        assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
        assert lines[0].get_linestyle() == lines[2].get_linestyle() != lines[1].get_linestyle()
    assert figures["loss"].get_suptitle() == "Loss: base vs cpu"
    # One run has MFU, the other only GFLOP/s: a panel for each, a line in each.
    mfu = {ax.get_ylabel(): ax.get_lines() for ax in figures["mfu"].get_axes()}
    assert {k: [line.get_label() for line in v] for k, v in mfu.items()} == {
        "MFU": ["base train"],
        "GFLOP/s": ["cpu train"],
    }
    legend = [text.get_text() for text in figures["loss"].legends[0].get_texts()]
    assert legend == ["base train", "base eval", "cpu train", "cpu eval"]


def test_task_metrics_and_evaluation_splits():
    run = {
        "train/loss": _series(TRAIN_STEPS),
        "train/accuracy": _series(TRAIN_STEPS),
        "eval/matched/accuracy": _series(EVAL_STEPS),
        "eval/mismatched/accuracy": _series(EVAL_STEPS),
        "eval/dev/f1": _series(EVAL_STEPS),
        "eval/null_threshold": _series(EVAL_STEPS),  # SQuAD 2.0 bookkeeping: not a curve
    }
    accuracy = _panels(plot.build_figures([("mnli", run)])["accuracy"])
    assert {title: [line.get_label() for line in lines] for title, lines in accuracy.items()} == {
        "accuracy": ["train", "eval matched", "eval mismatched"],
        "F1": ["eval dev"],
    }


def test_run_labels_use_as_few_path_components_as_tell_runs_apart(tmp_path):
    assert plot.run_labels([tmp_path / "base"]) == ["base"]
    assert plot.run_labels([tmp_path / "a" / "out", tmp_path / "b" / "out"]) == ["a/out", "b/out"]
    assert plot.run_labels([tmp_path / "run" / "tensorboard"]) == ["run"]
    assert plot.run_labels(["gs://bucket/x/run", "gs://bucket/y/run"]) == ["x/run", "y/run"]


def test_figures_are_written_as_pngs_of_their_size(tmp_path):
    figures = plot.build_figures([("base", _pretraining_run())])
    written = plot.write_figures(figures, tmp_path / "plots")

    assert written == [str(tmp_path / "plots" / f"{name}.png") for name in figures]
    for name, path in zip(figures, written, strict=True):
        pixels = image.imread(path)
        width, height = figures[name].get_size_inches() * 110
        assert pixels.shape[:2] == (round(height), round(width))
        assert pixels.std() > 0.05  # something is drawn, not a blank canvas


def test_every_scalar_the_trainer_logs_is_drawn_or_known_not_to_be(tmp_path):
    """The tags come from the code that makes them (the step values, a task's summary, the
    throughput rates, the fine-tuning metrics) through the Reporter and back from its event
    file: a metric renamed there cannot silently drop out of the plots."""
    from bert_jax.tasks import metrics, ner_metrics, pretraining_loss
    from bert_jax.trainer import accumulate, events, report

    sums = {
        "mlm_loss_sum": 30.0, "mlm_correct": 4.0, "mlm_weight": 10.0,
        "nsp_loss_sum": 1.4, "nsp_correct": 1.0, "nsp_count": 2.0,
    }  # fmt: skip
    totals = accumulate.Accumulator()
    totals.add({**sums, **dict.fromkeys(accumulate.STEP_VALUES, 0.5)})
    train = totals.summary(pretraining_loss.summarize)
    for peak in (None, 1e12):  # an unknown chip (GFLOP/s only), a known one (MFU)
        throughput = report.Throughput("float32")
        throughput.peak = peak
        for step in (1, 2):
            throughput.add(step, 1e9, 8, 1024)
        train |= throughput.measure(2)
    evaluated = {
        **pretraining_loss.summarize(sums),
        **{f"dev/{name}": 0.5 for name in metrics.METRICS},
        **ner_metrics.score([["B-PER", "O"]], [["B-PER", "B-LOC"]]),
    }
    reporter = report.Reporter(str(tmp_path), total_steps=2, first_step=0, enabled=True)
    reporter.scalars(2, "train", train)
    reporter.scalars(2, "eval", evaluated)
    reporter.close()
    scalars = events.read_scalars(tmp_path)
    assert len(scalars) == len(train) + len(evaluated)

    figures = plot.build_figures([("run", scalars)])

    assert list(figures) == [group.name for group in plot.GROUPS]
    skipped = {tag for tag in scalars if plot.group_of(plot.split_tag(tag)[1]) is None}
    # Rates beside the one drawn for throughput and for compute.
    rates = ("steps_per_second", "tokens_per_second", "tflops_per_device")
    assert skipped == {f"train/{rate}" for rate in rates}
    lines = [line for f in figures.values() for ax in f.get_axes() for line in ax.get_lines()]
    assert len(lines) == len(scalars) - len(skipped)
