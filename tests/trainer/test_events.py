"""Reading TensorBoard scalars back without TensorFlow: what tensorboardX (and the trainer's
Reporter) wrote comes back with the same steps and float32 values."""

import logging

import numpy as np
import pytest
from tensorboardX import SummaryWriter
from tensorboardX.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

from bert_jax.data import tfrecord
from bert_jax.errors import UserError
from bert_jax.trainer import events


def _write(logdir, points: dict[str, list[tuple[int, float]]], suffix: str = "") -> None:
    writer = SummaryWriter(logdir=str(logdir), filename_suffix=suffix)
    for tag, series in points.items():
        for step, value in series:
            writer.add_scalar(tag, value, step)
    writer.close()


def _event_file(path, wall_time: float, scalars: list[tuple[int, str, float]]) -> None:
    """An event file written record by record: a version event, then one event per scalar."""
    records = [event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2")]
    for step, tag, value in scalars:
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
        )
        records.append(event_pb2.Event(wall_time=wall_time, step=step, summary=summary))
    tfrecord.write_file(path, [r.SerializeToString() for r in records])


def test_scalars_written_by_tensorboardx_read_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    losses = [
        (step, float(v)) for step, v in zip(range(10, 110, 10), rng.uniform(1, 11, 10), strict=True)
    ]
    written = {
        "train/loss": losses,
        "train/learning_rate": [(10, 1e-4), (20, 9.5e-5)],
        "eval/mlm_accuracy": [(50, 0.125), (100, 0.375)],
        "eval/matched/accuracy": [(100, 0.8125)],
    }
    _write(tmp_path / "tensorboard", written)

    scalars = events.read_scalars(tmp_path)

    assert sorted(scalars) == sorted(written)
    for tag, points in written.items():
        assert scalars[tag].steps == tuple(step for step, _ in points)
        # Summaries hold float32: the value read is the float32 nearest the one written.
        expected = tuple(float(np.float32(value)) for _, value in points)
        assert scalars[tag].values == expected, tag


def test_the_trainer_reporter_tags_and_directory(tmp_path):
    from bert_jax.trainer.report import Reporter

    reporter = Reporter(str(tmp_path), total_steps=20, first_step=0, enabled=True)
    reporter.scalars(10, "train", {"loss": 7.5, "mfu": 0.25})
    reporter.scalars(20, "train", {"loss": 6.5, "mfu": 0.375})
    reporter.scalars(20, "eval", {"loss": 6.75})
    reporter.close()

    scalars = events.read_scalars(tmp_path)

    assert scalars == {
        "eval/loss": events.Series((20,), (6.75,)),
        "train/loss": events.Series((10, 20), (7.5, 6.5)),
        "train/mfu": events.Series((10, 20), (0.25, 0.375)),
    }


def test_the_tensorboard_directory_itself_is_accepted(tmp_path):
    _write(tmp_path / "tensorboard", {"train/loss": [(1, 2.0)]})
    scalars = events.read_scalars(tmp_path / "tensorboard")
    assert scalars == {"train/loss": events.Series((1,), (2.0,))}


def test_a_resumed_run_replaces_the_steps_it_logged_again(tmp_path):
    logdir = tmp_path / "tensorboard"
    logdir.mkdir()
    # The interrupted run logged to step 50 but saved step 30; the resumed one logs from 40.
    # File names sort the other way round from their start times: start times decide.
    first = [(s, "train/loss", float(s)) for s in (10, 20, 30, 40, 50)] + [(50, "eval/f1", 0.5)]
    _event_file(logdir / "events.out.tfevents.2.host", 1000.0, first)
    second = [(s, "train/loss", s + 0.5) for s in (40, 50, 60)]
    _event_file(logdir / "events.out.tfevents.1.host", 2000.0, second)

    scalars = events.read_scalars(tmp_path)

    assert scalars["train/loss"] == events.Series(
        (10, 20, 30, 40, 50, 60), (10, 20, 30, 40.5, 50.5, 60.5)
    )
    assert scalars["eval/f1"] == events.Series((50,), (0.5,))  # not logged again: kept


def test_tensor_scalars_as_tensorflow_2_writes_them(tmp_path):
    def tensor_value(tag, tensor):
        return summary_pb2.Summary.Value(tag=tag, tensor=tensor)

    shape = tensor_shape_pb2.TensorShapeProto()  # a scalar: no dimensions
    values = [
        tensor_value("a", tensor_pb2.TensorProto(dtype=1, tensor_shape=shape, float_val=[0.5])),
        tensor_value(
            "b",
            tensor_pb2.TensorProto(
                dtype=2, tensor_shape=shape, tensor_content=np.float64(0.1).tobytes()
            ),
        ),
        tensor_value(  # not a scalar: skipped
            "c",
            tensor_pb2.TensorProto(
                dtype=1,
                tensor_shape=tensor_shape_pb2.TensorShapeProto(
                    dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=2)]
                ),
                float_val=[1.0, 2.0],
            ),
        ),
    ]
    event = event_pb2.Event(wall_time=1.0, step=7, summary=summary_pb2.Summary(value=values))
    tfrecord.write_file(tmp_path / "events.out.tfevents.1.host", [event.SerializeToString()])

    assert events.read_scalars(tmp_path) == {
        "a": events.Series((7,), (0.5,)),
        "b": events.Series((7,), (0.1,)),
    }


def test_an_unfinished_last_record_keeps_the_points_before_it(tmp_path, caplog):
    logdir = tmp_path / "tensorboard"
    _write(logdir, {"train/loss": [(1, 3.0), (2, 2.0)]})
    (name,) = logdir.iterdir()
    whole = name.stat().st_size
    partial = tfrecord.frame(b"x" * 40)[:20]  # a record the writer had not finished
    with open(name, "ab") as f:
        f.write(partial)

    with caplog.at_level(logging.WARNING):
        scalars = events.read_scalars(tmp_path)

    assert scalars == {"train/loss": events.Series((1, 2), (3.0, 2.0))}
    assert f"read to byte {whole}" in caplog.text and str(name) in caplog.text


def test_a_workdir_without_event_files_is_a_user_error_naming_it(tmp_path):
    (tmp_path / "tensorboard").mkdir()
    with pytest.raises(UserError, match=f"no TensorBoard event files in {tmp_path}"):
        events.read_scalars(tmp_path)
    with pytest.raises(UserError, match=f"workdir does not exist: {tmp_path / 'missing'}"):
        events.read_scalars(tmp_path / "missing")
