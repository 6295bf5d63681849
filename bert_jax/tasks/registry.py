"""Which module fine-tunes a task: `config.task` -> its family's module.

A task name is `family/name` ("glue/mrpc", "squad/v1.1", "ner/conll2003") or a bare family
("swag"). Every family module defines `build(config, workdir, feed, eval_batch_size, warn)`, the
trainer's task for that config. Modules are imported only when their family is asked for, so
fine-tuning GLUE never imports the SQuAD code.
"""

from __future__ import annotations

from types import ModuleType

from bert_jax.errors import UserError


def _glue() -> ModuleType:
    from bert_jax.tasks import glue

    return glue


def _squad() -> ModuleType:
    from bert_jax.tasks import squad

    return squad


def _ner() -> ModuleType:
    from bert_jax.tasks import ner

    return ner


def _swag() -> ModuleType:
    from bert_jax.tasks import choice

    return choice


# family -> its module, imported when asked for
FAMILIES = {"glue": _glue, "squad": _squad, "ner": _ner, "swag": _swag}


def family(task: str) -> str:
    return str(task).split("/", 1)[0]


def module(task: str) -> ModuleType:
    """The module of `task`'s family; a UserError naming the known ones otherwise."""
    name = family(task)
    if name not in FAMILIES:
        known = ", ".join(FAMILIES)
        raise UserError(f"unknown task {task!r}: its family {name!r} is not one of {known}")
    return FAMILIES[name]()


def build(config, workdir, feed, eval_batch_size: int, warn):
    """The trainer's task for `config.task` (the `build` of its family's module)."""
    return module(config.task).build(config, workdir, feed, eval_batch_size, warn)
