"""Loading `--config=FILE.py:ARG` with `--config.a.b=VALUE` overrides: ml_collections config
files, their overrides parsed by ml_collections' absl config flags, every mistake one line.

The training commands parse their command line with argparse (`bert_jax/cli/training.py`) and
hand the config file and the `--config.*` overrides here. Each call uses a fresh `FlagValues`,
so nothing global is defined and a command can run twice in one process (tests). Config files
import their siblings as `configs.common`; the directory holding `configs/` is put on sys.path
(the `bert-jax` script, unlike `python -m`, does not have the working directory there).
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Callable

from absl import flags
from ml_collections import ConfigDict, config_flags

from bert_jax.errors import UserError

REQUIRED = "--config=FILE.py[:ARG] is required (e.g. configs/pretrain.py:base)"


def is_override(arg: str) -> bool:
    """`--config.a.b=v`, `--config.a.b` (then its value, or a boolean) or `--noconfig.a.b`."""
    return arg.startswith(("--config.", "--noconfig."))


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


def _load(argv: list[str], define: Callable[[flags.FlagValues], None] | None, prog: str):
    values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", None, "config file and argument: FILE.py[:ARG]", values,
        lock_config=True, sys_argv=[prog, *argv],
    )  # fmt: skip
    if define is not None:
        define(values)
    try:
        rest = values([prog, *argv])
    except flags.Error as e:
        raise UserError(_last_line(e)) from None
    except (OSError, AttributeError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"bad --config: {_last_line(e)}") from None
    if len(rest) > 1:  # a stray word after a boolean override (`--config.data.synthetic yes`)
        raise UserError(f"unexpected argument {rest[1]!r} among the --config overrides")
    return values


def parse(argv: list[str], define: Callable[[flags.FlagValues], None] | None = None,
          prog: str = "bert-jax"):  # fmt: skip
    """Parsed FlagValues of `--config=FILE.py[:ARG]` and `--config.*` overrides in `argv`:
    `.config` is the locked ConfigDict (plus the absl flags `define` adds, if any)."""
    path = _config_path(argv)
    if not path:
        raise UserError(REQUIRED)
    file = pathlib.Path(path.split(":", 1)[0])
    if not file.is_file():
        raise UserError(f"config file {file} does not exist")
    root = str(file.resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    # Load once without overrides, to name a misspelt field instead of a bare KeyError.
    bare = _load([a for a in argv if not is_override(a)], define, prog)
    _check_fields(bare.config, argv, path)
    return _load(argv, define, prog)


def load(spec: str, overrides: list[str], prog: str = "bert-jax") -> ConfigDict:
    """The locked config `--config=spec` names, with `overrides` (each `--config.a.b=VALUE`)."""
    return parse([f"--config={spec}", *overrides], None, prog).config


def config_file(spec: str) -> pathlib.Path:
    """The file of `FILE.py[:ARG]`."""
    return pathlib.Path(spec.split(":", 1)[0])
