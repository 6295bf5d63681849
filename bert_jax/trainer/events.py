"""The scalars a run logged to TensorBoard (`report.Reporter`: WORKDIR/tensorboard/events.*),
read back without TensorFlow: TFRecord framing from `bert_jax.data.tfrecord`, `Event` protos
from tensorboardX, so local and gs:// workdirs read alike through `bert_jax.paths`.

A resumed run appends a new event file and logs again the steps after its checkpoint that the
interrupted run had already logged; like TensorBoard, the later file wins: a step at or below
the last one read for a tag drops the earlier points from that step on.
"""

from __future__ import annotations

import logging
import os
from typing import NamedTuple

import numpy as np

from bert_jax import paths
from bert_jax.data import tfrecord
from bert_jax.errors import UserError

log = logging.getLogger(__name__)

LOG_SUBDIR = "tensorboard"  # where report.Reporter writes, under the workdir
EVENT_FILE_GLOB = "events.out.tfevents.*"

# Scalars written as tensors (TensorFlow 2's tf.summary) rather than `simple_value`
# (tensorboardX, TF1): DataType enum value -> numpy dtype of tensor_content.
_TENSOR_DTYPES = {1: np.float32, 2: np.float64, 19: np.float16, 3: np.int32, 9: np.int64}


class Series(NamedTuple):
    """One tag's points in step order."""

    steps: tuple[int, ...]
    values: tuple[float, ...]


def event_files(workdir: paths.PathLike) -> list[str]:
    """The event files of a run: in WORKDIR/tensorboard, or in WORKDIR itself when it is that
    directory. UserError naming the workdir when there are none."""
    root = paths.path(workdir)
    try:
        for directory in (root / LOG_SUBDIR, root):
            found = paths.glob(directory / EVENT_FILE_GLOB)
            if found:
                return found
        exists = root.exists()
    except UserError:
        raise
    except Exception as e:  # gcsfs/google-auth raise many types: no bucket, no credentials
        raise UserError(paths.describe_error(root, e)) from e
    if not exists:
        raise UserError(f"workdir does not exist: {os.fspath(root)}")
    raise UserError(
        f"no TensorBoard event files in {os.fspath(root)} or its {LOG_SUBDIR}/ "
        "(a run writes them there once it has logged its first step)"
    )


def read_scalars(workdir: paths.PathLike) -> dict[str, Series]:
    """Every scalar tag the run at `workdir` logged -> its points, resumed runs merged."""
    files = [(name, *_read_file(name)) for name in event_files(workdir)]
    # Files in the order they were started (a file's first event is its creation time); the
    # name's timestamp has whole seconds only and two files may share one.
    files.sort(key=lambda item: (item[1], item[0]))
    points: dict[str, list[tuple[int, float]]] = {}
    for _, _, scalars in files:
        for step, tag, value in scalars:
            series = points.setdefault(tag, [])
            if series and step <= series[-1][0]:  # logged again after a restart: keep the new
                del series[_first_at_or_after(series, step) :]
            series.append((step, value))
    return {
        tag: Series(tuple(s for s, _ in pts), tuple(v for _, v in pts))
        for tag, pts in sorted(points.items())
    }


def _first_at_or_after(series: list[tuple[int, float]], step: int) -> int:
    return next(i for i, (s, _) in enumerate(series) if s >= step)


def _read_file(name: str) -> tuple[float, list[tuple[int, str, float]]]:
    """(wall time of the first event, [(step, tag, value)] of each scalar) of one event file.
    A damaged or unfinished last record (a run still writing) ends the file with a warning
    rather than losing the points before it."""
    from tensorboardX.proto import event_pb2

    started, scalars, read_to = None, [], 0
    try:
        with tfrecord.open_records(name) as records:
            for record in records:
                read_to = record.end
                event = event_pb2.Event.FromString(record.data)
                if started is None:
                    started = event.wall_time
                for value in event.summary.value:
                    scalar = _scalar(value)
                    if scalar is not None:
                        scalars.append((int(event.step), value.tag, scalar))
    except UserError:
        if not paths.path(name).exists():
            raise
        log.warning(
            "%s: read to byte %d; the record there is damaged or still being written", name, read_to
        )
    return (started or 0.0), scalars


def _scalar(value) -> float | None:
    """The number a Summary.Value holds, or None when it is not a scalar (an image...)."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind != "tensor":
        return None
    tensor = value.tensor
    if tensor.tensor_shape.dim and np.prod([d.size for d in tensor.tensor_shape.dim]) != 1:
        return None
    for field in ("float_val", "double_val", "int_val", "int64_val"):
        numbers = getattr(tensor, field)
        if numbers:
            return float(numbers[0])
    dtype = _TENSOR_DTYPES.get(tensor.dtype)
    if dtype is not None and len(tensor.tensor_content) == np.dtype(dtype).itemsize:
        return float(np.frombuffer(tensor.tensor_content, dtype)[0])
    return None
