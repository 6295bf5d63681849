"""Reading checkpoints back: the full train state onto the current mesh, or params alone to
host memory. Every failure to read is a UserError naming the step directory.

The state is saved unboxed (`nn.LogicallyPartitioned` boxes hold sharding names, not data), so
the files are the same whether or not a run keeps its params boxed; a boxed target gets its
boxes back after the restore.
"""

from __future__ import annotations

import logging
import sys
import time

import flax.linen as nn
import jax
import numpy as np
import orbax.checkpoint as ocp

from bert_jax import paths
from bert_jax.checkpoint import metadata as layout
from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig

_SHOWN = 6  # names listed in an error before "... and N more"


def item_handlers() -> dict:
    """Handlers of the items in a step directory; JSON files named after their item."""
    return {
        layout.STATE_ITEM: ocp.StandardCheckpointHandler(),
        layout.DATA_ITEM: ocp.JsonCheckpointHandler(filename=layout.DATA_ITEM),
        layout.METADATA_ITEM: ocp.JsonCheckpointHandler(filename=layout.METADATA_ITEM),
    }


def _reader(root: paths.Path) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(read_only=True, create=False, save_interval_steps=0)
    return ocp.CheckpointManager(root, options=options, item_handlers=item_handlers())


def _key_name(key) -> str:
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def leaf_paths(tree) -> dict[str, object]:
    """'a/b/c' -> leaf, for any pytree (dataclasses, dicts, tuples, namedtuples alike)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {"/".join(_key_name(k) for k in path): leaf for path, leaf in flat}


def _listing(names: list[str]) -> str:
    more = f" ... and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _check_structure(stored_tree, target, step_dir: paths.Path) -> None:
    """Name what differs between the checkpoint's state and this run's, before Orbax fails
    on the first mismatch with an opaque message (a changed optimizer, an extra head)."""
    stored, wanted = leaf_paths(stored_tree), leaf_paths(target)
    missing = sorted(set(wanted) - set(stored))
    extra = sorted(set(stored) - set(wanted))
    shapes = [
        f"{name} {tuple(stored[name].shape)} vs {tuple(wanted[name].shape)}"
        for name in sorted(set(stored) & set(wanted))
        if getattr(stored[name], "shape", None) is not None
        and tuple(stored[name].shape) != tuple(wanted[name].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing from the checkpoint: {_listing(missing)}")
    if extra:
        problems.append(f"not in this run's state: {_listing(extra)}")
    if shapes:
        problems.append(f"shape checkpoint vs run: {_listing(shapes)}")
    if problems:
        raise UserError(
            f"{step_dir} does not match this run's train state (model or optimizer changed?): "
            + "; ".join(problems)
        )


def _rebox(target, restored):
    def put_back(box, value):
        return box.replace_boxed(value) if isinstance(box, nn.meta.AxisMetadata) else value

    return jax.tree.map(
        put_back, target, restored, is_leaf=lambda x: isinstance(x, nn.meta.AxisMetadata)
    )


def _closed_loop_noise(unraisable) -> bool:
    error = unraisable.exc_value
    return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


def _silence_closed_loop_callbacks() -> None:
    """After a failed read, drop the "Event loop is closed" reports that follow it.

    Orbax reads arrays in an asyncio loop and closes it as soon as the first read fails; the
    other tensorstore reads of that restore still finish afterwards (in tensorstore's threads,
    possibly as the interpreter exits) and their callbacks find the loop closed. Python prints
    each as an "Exception ignored" traceback, below the one-line error the user must see last.
    Only that exact error is dropped; every other unraisable exception reaches the previous hook.
    """
    previous = sys.unraisablehook
    if getattr(previous, "drops_closed_loop_noise", False):
        return

    def hook(unraisable):
        if not _closed_loop_noise(unraisable):
            previous(unraisable)

    hook.drops_closed_loop_noise = True
    sys.unraisablehook = hook
    # tensorstore's threads print the same error through PyErr_Print, i.e. sys.excepthook.
    previous_excepthook = sys.excepthook

    def excepthook(kind, value, traceback):
        if not (isinstance(value, RuntimeError) and str(value) == "Event loop is closed"):
            previous_excepthook(kind, value, traceback)

    sys.excepthook = excepthook
    # The same abandoned reads, when they fail too, are reported by asyncio's exception handler
    # ("Task exception was never retrieved" and a traceback) as their tasks are collected.
    logging.getLogger("asyncio").addFilter(_drop_unretrieved_task_errors)


# Seconds to let the other array reads of a failed restore finish before the error is reported.
_ABANDONED_READS_GRACE_S = 1.0


def _let_abandoned_reads_finish() -> None:
    """Orbax gives up on a restore at its first failed array read, but tensorstore completes the
    reads already issued, in its own threads, and their callbacks report "Event loop is closed"
    tracebacks from those threads. Waiting a moment keeps them from interleaving with, or
    following, the one-line error (a failed restore ends the run, so the wait costs nothing)."""
    _silence_closed_loop_callbacks()
    time.sleep(_ABANDONED_READS_GRACE_S)


def _drop_unretrieved_task_errors(record: logging.LogRecord) -> bool:
    return "exception was never retrieved" not in str(record.msg)


def _unreadable(step_dir: paths.Path, error: Exception) -> UserError:
    _silence_closed_loop_callbacks()
    first_line = (str(error).strip().splitlines() or [""])[0]
    # tensorstore appends the repr of a bound method, not the details it announces.
    first_line = first_line.split(" See full TensorStore details")[0][:300]
    return UserError(
        f"checkpoint {step_dir} is unreadable ({type(error).__name__}: {first_line}); "
        "move that step directory aside to start from the previous one"
    )


def restore_state(step_dir: paths.Path, abstract_state):
    """(state, data_state) of one step, placed with the shardings `abstract_state` carries."""
    root, step = step_dir.parent, int(step_dir.name)
    target = nn.meta.unbox(abstract_state)
    # Before reading, not after a failure: the first abandoned read can report while the
    # failure is still propagating.
    _silence_closed_loop_callbacks()
    try:
        reader = _reader(root)
    except (OSError, ValueError, KeyError) as e:
        raise _unreadable(step_dir, e) from e
    # Closed on every path: a reader left open when an error propagates is torn down at
    # interpreter exit, after its event loop, and prints a traceback below the error line.
    try:
        try:
            stored = reader.item_metadata(step)[layout.STATE_ITEM]
        except (OSError, ValueError, KeyError) as e:
            raise _unreadable(step_dir, e) from e
        if stored is None:
            raise _unreadable(step_dir, FileNotFoundError(f"no {layout.STATE_ITEM} item"))
        _check_structure(getattr(stored, "tree", stored), target, step_dir)
        try:
            restored = reader.restore(
                step,
                args=ocp.args.Composite(
                    **{
                        layout.STATE_ITEM: ocp.args.StandardRestore(target),
                        layout.DATA_ITEM: ocp.args.JsonRestore(),
                    }
                ),
            )
        except Exception as e:  # tensorstore, OCDBT and JSON errors all mean a damaged step
            _let_abandoned_reads_finish()
            raise _unreadable(step_dir, e) from e
    finally:
        reader.close()
    data_state = restored[layout.DATA_ITEM]
    return _rebox(abstract_state, restored[layout.STATE_ITEM]), data_state


def read_arrays(step_dir: paths.Path, subtree: str | None = None):
    """One step's stored state (or its top-level `subtree`, e.g. "params") as host numpy
    arrays, in the nested-dict form Orbax stores; nothing is placed on a device."""
    state_dir = step_dir / layout.STATE_ITEM
    _silence_closed_loop_callbacks()  # before reading, as in `restore_state`
    checkpointer = ocp.Checkpointer(ocp.PyTreeCheckpointHandler())
    try:
        # The handler's own metadata: the tree's shapes and dtypes. (The Checkpointer's would
        # also look for a step metadata file inside the item and warn that there is none.)
        stored = ocp.PyTreeCheckpointHandler().metadata(state_dir)
        tree = getattr(stored, "tree", stored)
        if subtree is not None:
            if not isinstance(tree, dict) or subtree not in tree:
                raise UserError(f"{state_dir}: no {subtree} in the stored state")
            tree = {subtree: tree[subtree]}
        item = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), tree)
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
        restored = checkpointer.restore(
            state_dir,
            args=ocp.args.PyTreeRestore(
                item=item, restore_args=restore_args, partial_restore=subtree is not None
            ),
        )
    except UserError:
        raise
    except Exception as e:
        _let_abandoned_reads_finish()
        raise _unreadable(step_dir, e) from e
    finally:
        checkpointer.close()
    return restored if subtree is None else restored[subtree]


def read_params(step_dir: paths.Path) -> dict:
    """The `params` subtree of one step's state as host numpy arrays (no device placement)."""
    return read_arrays(step_dir, "params")


def load_params(path) -> tuple[BertConfig, dict]:
    """(BertConfig, params) of a bert-jax checkpoint: a workdir (its latest step), its
    `checkpoints/` directory, or one step directory. Params are host numpy arrays in the
    layout the checkpoint was written with (`config.scan_layers` says which)."""
    root, step = layout.resolve(path)
    step_dir = root / str(step)
    metadata = layout.read_metadata(step_dir)
    if "model" not in metadata:
        raise UserError(f"{step_dir}: metadata has no model config")
    config = BertConfig.from_dict(metadata["model"])
    return config, read_params(step_dir)
