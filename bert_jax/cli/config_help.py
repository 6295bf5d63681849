"""The config fields `bert-jax pretrain --help` and `bert-jax finetune --help` list, each with its
meaning read from the comment beside it in the config files, so help and configs cannot drift.

Config files define one field per line with its meaning as a trailing comment:

    t.batch_size = 256  # global sequences per optimizer step, summed over all hosts

Fields are found by following `get_config()` through the source (nothing is copied by hand):
`config.train = train_config()` puts the fields of the ConfigDict `train_config()` returns under
`train`; `t = config.train` makes `t.x` mean `train.x`; `config = common.get_config()` starts
from a sibling file's fields. A later comment on a field replaces an earlier one (a task config's
words for its own setting win); a field set without a comment keeps the one it had. A comment
block above a field without a trailing comment is its meaning; a block ending in a colon
introduces the fields below it; a block right below a commented field continues its comment.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import io
import pathlib
import textwrap
import tokenize

import bert_jax
from bert_jax.cli import config_args
from bert_jax.cli.parser import help_width

NAME_COLUMN = 44  # longest `field = value` that keeps the meanings in one column


@dataclasses.dataclass
class Field:
    meaning: str = ""
    note: str = ""  # a comment line introducing this field and the ones after it


@dataclasses.dataclass
class Fields:
    """Every field found, dotted (`train.batch_size`), in the order the source defines them, and
    the docstrings of the functions that build each section."""

    fields: dict[str, Field] = dataclasses.field(default_factory=dict)
    sections: dict[str, str] = dataclasses.field(default_factory=dict)

    def merge(self, other: Fields, prefix: str) -> None:
        for name, field in other.fields.items():
            self.record(_join(prefix, name), field.meaning, field.note)
        for name, doc in other.sections.items():  # "": replaced by an undocumented section
            self.sections[_join(prefix, name)] = doc

    def record(self, name: str, meaning: str, note: str) -> None:
        field = self.fields.setdefault(name, Field())
        field.meaning = meaning or field.meaning
        field.note = note or field.note


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


class _Source:
    """One config file: its functions, its imports of sibling config files and its comments."""

    def __init__(self, path: pathlib.Path):
        text = path.read_text(encoding="utf-8")
        self.path = path
        tree = ast.parse(text, filename=str(path))
        self.functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        # local name -> (sibling file stem, function name or None for the module itself)
        self.imports: dict[str, tuple[str, str | None]] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                parts = node.module.split(".")
                if parts[0] != path.parent.name:  # only `configs.*`: the sibling files
                    continue
                for alias in node.names:
                    local = alias.asname or alias.name
                    self.imports[local] = (
                        (alias.name, None) if len(parts) == 1 else (parts[-1], alias.name)
                    )
        self.trailing: dict[int, str] = {}  # line -> the comment after code on it
        self.standalone: dict[int, str] = {}  # line -> a comment alone on its line
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            line = token.start[0]
            if token.type == tokenize.COMMENT:
                body = token.string.lstrip("#").strip()
                alone = not token.line[: token.start[1]].strip()
                (self.standalone if alone else self.trailing)[line] = body
        self.assigns = {  # first line -> a `x.field = ...` statement
            node.lineno: node
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute)
        }

    def _has_trailing(self, node: ast.stmt) -> bool:
        return any(n in self.trailing for n in range(node.lineno, node.end_lineno + 1))

    def _block(self, first: int, step: int) -> list[int]:
        """The comment lines next to `first` going up (step -1) or down (1), in line order."""
        lines = []
        while first in self.standalone:
            lines.append(first)
            first += step
        return sorted(lines)

    def _kind(self, block: list[int]) -> str | None:
        """What a comment block between two lines is: the "meaning" of the field below (it has
        no trailing comment), a "note" introducing it (ends with a colon, or stands above a
        commented field with no commented field above), or the "continuation" of the trailing
        comment above."""
        below = self.assigns.get(block[-1] + 1)
        if below is not None and not self._has_trailing(below) and self.callee(below.value) is None:
            return "meaning"
        if below is not None and self.standalone[block[-1]].endswith(":"):
            return "note"
        if block[0] - 1 in self.trailing:
            return "continuation"
        return "note" if below is not None else None

    def comment(self, node: ast.stmt) -> tuple[str, str]:
        """(meaning, note) of the field assigned by `node` (module docstring)."""
        lines = range(node.lineno, node.end_lineno + 1)
        texts = [self.trailing[n] for n in lines if n in self.trailing]
        note = ""
        above = self._block(node.lineno - 1, -1)
        if above and self._kind(above) in ("meaning", "note"):
            text = " ".join(self.standalone[n] for n in above)
            texts, note = (texts, text) if texts else ([text], "")
        below = self._block(node.end_lineno + 1, 1)
        if texts and below and self._kind(below) == "continuation":
            texts += [self.standalone[n] for n in below]
        return " ".join(texts), note

    def callee(self, call: ast.expr) -> tuple[pathlib.Path, str] | None:
        """(file, function) a call to a config-building function of this or a sibling file."""
        if not isinstance(call, ast.Call):
            return None
        func = call.func
        if isinstance(func, ast.Name):
            if func.id in self.functions:
                return self.path, func.id
            stem, name = self.imports.get(func.id, (None, None))
            if stem and name:
                return self.path.with_name(f"{stem}.py"), name
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            stem, name = self.imports.get(func.value.id, (None, None))
            if stem and name is None:
                return self.path.with_name(f"{stem}.py"), func.attr
        return None


def _statements(body: list[ast.stmt]):
    """Every statement in source order, inside if/for/with/try blocks too."""
    for node in body:
        yield node
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from _statements(getattr(node, name, []))
        for handler in getattr(node, "handlers", []):
            yield from _statements(handler.body)


def _dotted(node: ast.expr, prefixes: dict[str, str]) -> str | None:
    """`config.train.batch_size` -> "train.batch_size" when `config` is a known prefix."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if not parts or not isinstance(node, ast.Name) or node.id not in prefixes:
        return None
    return _join(prefixes[node.id], ".".join(parts))


@functools.cache
def _source(path: pathlib.Path) -> _Source | None:
    return _Source(path) if path.is_file() else None


def _fields(path: pathlib.Path, function: str, active: frozenset = frozenset()) -> Fields:
    """The fields of the ConfigDict `function` in `path` returns, with their comments."""
    out = Fields()
    source = _source(path)
    node = source.functions.get(function) if source else None
    if node is None or (path, function) in active:
        return out
    active = active | {(path, function)}
    returned = [
        n.value.id
        for n in ast.walk(node)
        if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)
    ]
    if not returned:
        return out
    prefixes = {returned[-1]: ""}  # variable -> the dotted section it stands for

    def called(call: ast.expr) -> Fields | None:
        target = source.callee(call)
        defining = _source(target[0]) if target else None
        if defining is None or target[1] not in defining.functions:
            return None
        found = _fields(*target, active)
        doc = ast.get_docstring(defining.functions[target[1]])
        found.sections[""] = " ".join((doc or "").split())
        return found

    for statement in _statements(node.body):
        if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
            continue
        target, value = statement.targets[0], statement.value
        if isinstance(target, ast.Name):
            alias = _dotted(value, prefixes)
            if alias is not None:  # t = config.train
                prefixes[target.id] = alias
            elif target.id in prefixes and (built := called(value)) is not None:
                out.merge(built, prefixes[target.id])  # config = common.get_config()
            continue
        name = _dotted(target, prefixes)
        if name is None:
            continue
        built = called(value)
        if built is not None and built.fields:  # config.train = train_config()
            out.merge(built, name)
        else:
            out.record(name, *source.comment(statement))
    out.sections.pop("", None)
    return out


def config_fields(config_file: pathlib.Path) -> Fields:
    """The fields `config_file`'s `get_config()` builds, with their meanings."""
    _source.cache_clear()  # a config file edited since the last call is read again
    return _fields(pathlib.Path(config_file).resolve(), "get_config")


def common_file() -> pathlib.Path | None:
    """configs/common.py of this checkout (or of the working directory)."""
    for root in (pathlib.Path(bert_jax.__file__).resolve().parent.parent, pathlib.Path.cwd()):
        if (root / "configs" / "common.py").is_file():
            return root / "configs" / "common.py"
    return None


def _value(config, name: str):
    for part in name.split("."):
        config = config[part]
    return config


def _leaves(config, prefix: str = "") -> list[str]:
    out = []
    for key, value in config.items():
        name = _join(prefix, key)
        out += _leaves(value, name) if hasattr(value, "items") else [name]
    return out


def _wrap(text: str, width: int, **indents) -> list[str]:
    # Words stay whole (`truncated-normal`, paths), so the help reads as the comment was written.
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False, **indents)


def describe(found: Fields, config=None) -> list[str]:
    """Lines listing the fields section by section: `name  meaning`, or with a loaded `config`
    `name = value  meaning` for every field it has."""
    names = list(found.fields)
    if config is not None:
        leaves = _leaves(config)
        names = [n for n in names if n in leaves] + sorted(set(leaves) - set(names))
    groups: dict[str, list[str]] = {"": []}
    for name in names:
        groups.setdefault(name.rsplit(".", 1)[0] if "." in name else "", []).append(name)
    rows = {n: f"{n} = {_value(config, n)!r}" if config is not None else n for n in names}
    column = min(NAME_COLUMN, max(map(len, rows.values()), default=0)) + 4  # 2 indent, 2 gap
    indent = " " * column
    width = help_width()
    lines = []
    for section, members in groups.items():
        if not members:
            continue
        heading = f"{section or 'top level'}:"
        doc = found.sections.get(section, "")
        lines += [""] + _wrap(f"{heading} {doc}" if doc else heading, width)
        for name in members:
            field = found.fields.get(name, Field())
            if field.note:
                lines += _wrap(field.note, width, initial_indent="  ", subsequent_indent="  ")
            row = f"  {rows[name]}  "
            if len(row) > column:  # a long value: its meaning starts on the next line
                lines.append(row.rstrip())
                row = indent
            wrapped = _wrap(
                field.meaning, width, initial_indent=row.ljust(column), subsequent_indent=indent
            )
            lines += wrapped or [row.rstrip()]
    return lines


def help_text(spec: str | None = None, config=None) -> str:
    """The config section of a training command's help: the fields of `spec`'s file (FILE.py[:ARG];
    default: configs/common.py), with the values of `config` (`spec` loaded) when given."""
    config_file = config_args.config_file(spec) if spec else common_file()
    if config_file is None:
        return "config fields: configs/common.py not found (run from the repository's root)"
    if config is None:
        intro = (
            f"config fields ({config_file.parent.name}/{config_file.name}), with their meanings. "
            "Set any with --config.FIELD=VALUE (e.g. --config.train.batch_size=64); "
            "`--config=FILE.py:ARG --help` shows a config's values, and the fields it adds."
        )
    else:
        intro = f"config fields of {spec}: value, meaning. Set any with --config.FIELD=VALUE."
    lines = _wrap(intro, help_width())
    return "\n".join([*lines, *describe(config_fields(config_file), config)])
