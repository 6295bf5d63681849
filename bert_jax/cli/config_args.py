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

from absl import flags
from ml_collections import ConfigDict, config_flags

from bert_jax.errors import UserError


def is_override(arg: str) -> bool:
    """`--config.a.b=v`, `--config.a.b` (then its value, or a boolean) or `--noconfig.a.b`."""
    return arg.startswith(("--config.", "--noconfig."))


def config_file(spec: str) -> pathlib.Path:
    """The file of `FILE.py[:ARG]`."""
    return pathlib.Path(spec.split(":", 1)[0])


def _check_fields(config: ConfigDict, overrides: list[str], spec: str) -> None:
    for arg in overrides:
        dotted = arg.split("=", 1)[0].split(".", 1)[1]
        node, walked = config, []
        for part in dotted.split("."):
            if not isinstance(node, ConfigDict) or part not in node:
                where = ".".join(walked) or "the config"
                known = ", ".join(sorted(node.keys())) if isinstance(node, ConfigDict) else ""
                raise UserError(
                    f"{arg}: {spec} has no field {dotted!r} ({where} has: {known})"
                    if known
                    else f"{arg}: {spec} has no field {dotted!r}"
                )
            node, walked = node[part], [*walked, part]


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _load(argv: list[str]) -> ConfigDict:
    argv = ["bert-jax", *argv]  # absl's argv: the program, then the flags
    values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", None, "config file and argument: FILE.py[:ARG]", values,
        lock_config=True, sys_argv=argv,
    )  # fmt: skip
    try:
        rest = values(argv)
    except flags.Error as e:
        raise UserError(_last_line(e)) from None
    except (OSError, AttributeError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"bad --config: {_last_line(e)}") from None
    if len(rest) > 1:  # a stray word after a boolean override (`--config.data.synthetic yes`)
        raise UserError(f"unexpected argument {rest[1]!r} among the --config overrides")
    return values.config


def load(spec: str, overrides: list[str]) -> ConfigDict:
    """The locked config `--config=spec` names, with `overrides` (each `--config.a.b=VALUE`,
    `--config.a.b` or `--noconfig.a.b`) applied."""
    file = config_file(spec)
    if not file.is_file():
        raise UserError(f"config file {file} does not exist")
    root = str(file.resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    bare = _load([f"--config={spec}"])
    if not overrides:
        return bare
    # Loaded without overrides first, to name a misspelt field instead of a bare KeyError.
    _check_fields(bare, overrides, spec)
    return _load([f"--config={spec}", *overrides])
