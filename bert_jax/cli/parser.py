"""The one argument parser of every `bert-jax` command and benchmark.

`command_parser` gives each command the same help and the same errors:
- help: a few sentences on what the command does, its options with their defaults, and runnable
  examples last (`bert-jax COMMAND --help`);
- errors: a mistake on the command line is a `UserError` naming the option, which `bert-jax`
  prints as one line (`bert-jax COMMAND: error: ...`) and exits 2, never a usage dump.
Options are spelled in full (no abbreviations), so adding an option never changes what an
existing command line means.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence

from bert_jax.errors import UserError

MAX_WIDTH = 100  # the width help is written for (descriptions are wrapped by hand to it)


def help_width() -> int:
    """Columns for help text: the terminal's, at most MAX_WIDTH."""
    return min(MAX_WIDTH, shutil.get_terminal_size().columns) - 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Description and epilog as written (their tables and examples keep their layout); each
    option's default, where it has a telling one, after its help."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=32, width=help_width())

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        untold = default is None or default is False or default == "" or default == []
        if untold or default is argparse.SUPPRESS or not action.option_strings:
            return text
        if "default" in text:  # the help already says it, in its own words
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class CommandParser(argparse.ArgumentParser):
    """argparse with one-line errors (see the module docstring)."""

    def error(self, message: str) -> None:  # argparse calls this for every bad command line
        raise UserError(" ".join(message.split()))

    def parse_args(self, args=None, namespace=None):
        # A misspelt option is named first, not hidden behind "--vocab is required".
        args = sys.argv[1:] if args is None else list(args)
        given = args[: args.index("--")] if "--" in args else args
        unknown = [arg for arg in given if self._unknown_option(arg)]
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return super().parse_args(args, namespace)

    def _unknown_option(self, arg: str) -> bool:
        if not arg.startswith(tuple(self.prefix_chars)) or arg in ("-", "--") or " " in arg:
            return False
        if self._negative_number_matcher.match(arg) and not self._has_negative_number_optionals:
            return False  # a negative value, as argparse reads it
        return arg.split("=", 1)[0] not in self._option_string_actions


def examples_block(examples: Sequence[str]) -> str:
    """`examples:` and each example indented under it (a multi-line example keeps its lines)."""
    lines = ["examples:"]
    for example in examples:
        lines += [f"  {line}" for line in example.strip("\n").splitlines()]
    return "\n".join(lines)


def command_parser(
    prog: str, description: str, examples: Sequence[str], epilog: str = "", **kwargs
) -> CommandParser:
    """The parser of one command: `description` (a few sentences, shown as written), then the
    options, then `epilog` (more detail, optional) and `examples` (at least one command line;
    `  # ...` after it says what it does)."""
    if not examples:
        raise ValueError(f"{prog}: a command's help needs at least one example")
    parts = [epilog.strip("\n"), examples_block(examples)] if epilog else [examples_block(examples)]
    return CommandParser(
        prog=prog,
        description=description.strip("\n"),
        epilog="\n\n".join(parts),
        formatter_class=HelpFormatter,
        allow_abbrev=False,
        **kwargs,
    )


def split_examples(doc: str) -> tuple[str, list[str]]:
    """A module docstring as (its prose, its example command lines): the indented lines that
    start with `bert-jax ` are examples (a line ending in a backslash continues on the next)."""
    prose: list[str] = []
    examples: list[str] = []
    continuing = False
    for line in doc.strip("\n").splitlines():
        if continuing:
            examples[-1] += "\n  " + line.strip()
        elif line.startswith(" ") and line.strip().startswith("bert-jax "):
            examples.append(line.strip())
        else:
            prose.append(line)
            continue
        continuing = line.rstrip().endswith("\\")
    text = "\n".join(prose)
    while "\n\n\n" in text:  # where examples stood between two paragraphs
        text = text.replace("\n\n\n", "\n\n")
    return text.strip("\n"), examples
