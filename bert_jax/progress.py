"""Progress bars (tqdm, on stderr) for the waits outside the training loop: evaluation,
checkpoint import and export, embedding.

A bar is shown where someone watches it: when stderr is a terminal. The caller may decide
(`progress=True/False`, e.g. a `--no_progress` flag), and so may the environment for a whole
process: BERT_JAX_PROGRESS=1 shows bars in a log file too, BERT_JAX_PROGRESS=0 never shows them.
Only process 0 of a multi-process run draws one. Bars never touch stdout, which scripts read.
"""

from __future__ import annotations

import os
import sys

from bert_jax.errors import UserError

ENV = "BERT_JAX_PROGRESS"
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def setting() -> bool | None:
    """BERT_JAX_PROGRESS: True (1), False (0) or None (not set)."""
    value = os.environ.get(ENV, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    if value:
        raise UserError(f"{ENV}={os.environ[ENV]!r}: expected 1 (bars everywhere) or 0 (none)")
    return None


def wanted(progress: bool | None = None) -> bool:
    """`progress` when given; else BERT_JAX_PROGRESS; else whether stderr is a terminal."""
    if progress is not None:
        return bool(progress)
    chosen = setting()
    if chosen is not None:
        return chosen
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def bar(
    iterable=None,
    *,
    total: float | None = None,
    desc: str | None = None,
    unit: str = "it",
    progress: bool | None = None,
    process_index: int = 0,
    leave: bool = True,
    **options,
):
    """A tqdm bar on stderr (its total from `len(iterable)` when it has one: with a total the
    bar shows an ETA, without one the count and rate). Disabled unless `wanted(progress)` and
    this is process `0` (pass `jax.process_index()` where several processes run)."""
    from tqdm import tqdm

    shown = process_index == 0 and wanted(progress)
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        file=sys.stderr,
        disable=not shown,
        dynamic_ncols=True,
        **options,
    )
