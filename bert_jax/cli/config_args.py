"""`--config=FILE.py:ARG --config.a.b=VALUE ...` for training subcommands: ml_collections config
files with absl flag overrides, parsed from the subcommand's own argv, every mistake one line.

Each call uses a fresh `FlagValues`, so nothing global is defined and `main(argv)` can run twice
in one process (tests). Config files import their siblings as `configs.common`; the directory
holding `configs/` is put on sys.path (the `bert-jax` script, unlike `python -m`, does not have
the working directory there).
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Callable

from absl import flags
from ml_collections import ConfigDict, config_flags

from bert_jax.errors import UserError


def _config_path(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _overrides(argv: list[str]) -> list[tuple[str, str]]:
    """(dotted field, the argument) for every `--config.x.y[=v]` in argv."""
    out = []
    for arg in argv:
        if arg.startswith("--config."):
            out.append((arg[len("--config.") :].split("=", 1)[0], arg))
    return out


def _check_fields(config: ConfigDict, argv: list[str], source: str) -> None:
    for dotted, arg in _overrides(argv):
        node, walked = config, []
        for part in dotted.split("."):
            if not isinstance(node, ConfigDict) or part not in node:
                where = ".".join(walked) or "the config"
                known = ", ".join(sorted(node.keys())) if isinstance(node, ConfigDict) else ""
                raise UserError(
                    f"{arg}: {source} has no field {dotted!r} ({where} has: {known})"
                    if known
                    else f"{arg}: {source} has no field {dotted!r}"
                )
            node, walked = node[part], [*walked, part]


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _load(argv: list[str], define: Callable[[flags.FlagValues], None], prog: str):
    values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", None, "config file and argument: FILE.py[:ARG]", values,
        lock_config=True, sys_argv=[prog, *argv],
    )  # fmt: skip
    define(values)
    try:
        values([prog, *argv])
    except flags.Error as e:
        raise UserError(_last_line(e)) from None
    except (OSError, AttributeError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"bad --config: {_last_line(e)}") from None
    return values


def parse(argv: list[str], define: Callable[[flags.FlagValues], None], prog: str):
    """Parsed FlagValues: `.config` (locked ConfigDict) plus the flags `define` adds."""
    if any(a in ("-h", "--help", "-help") for a in argv):
        values = flags.FlagValues()
        define(values)
        print(f"usage: {prog} --config=FILE.py[:ARG] [--config.FIELD=VALUE ...] [options]\n")
        print(values.get_help())
        raise SystemExit(0)
    path = _config_path(argv)
    if not path:
        raise UserError("--config=FILE.py[:ARG] is required (e.g. configs/pretrain.py:base)")
    file = pathlib.Path(path.split(":", 1)[0])
    if not file.is_file():
        raise UserError(f"config file {file} does not exist")
    root = str(file.resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    # Load once without overrides, to name a misspelt field instead of a bare KeyError.
    bare = _load([a for a in argv if not a.startswith("--config.")], define, prog)
    _check_fields(bare.config, argv, path)
    return _load(argv, define, prog)
