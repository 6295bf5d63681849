"""Real English that ships with every Python: the standard library's own documentation.

Two sources, read without importing any module:
  reference   `pydoc_data.topics.topics`, the language reference as `help()` shows it (one
              document per topic: "assignment", "with", "typesseq", ...)
  docstring   the docstrings of every module, class and function in the standard library's
              source files, found with `ast` (one document per file, docstrings in source order)

A document is a list of paragraphs of prose. Both sources are plain text with hard-wrapped
paragraphs separated by blank lines; a paragraph's lines are joined with spaces. Code is left
out: doctests (`>>>`), grammar rules (`::=`) and any paragraph that reads as code rather than
as words (`is_prose`); so are headings. Light markup is removed: reST roles (:func:`len` ->
len), backquotes, emphasis asterisks and bullets.

The output depends only on the Python installation: files are walked in sorted order and
nothing is random here.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import sysconfig
from collections.abc import Iterator

REFERENCE, DOCSTRING = "reference", "docstring"

# Folders of the standard library that hold no library documentation worth reading (tests,
# the IDLE and 2to3 applications, third-party packages, the reference read above) or only
# generated boilerplate (codec tables).
SKIPPED_DIRS = frozenset(
    {
        "__pycache__",
        "dist-packages",
        "encodings",
        "idlelib",
        "lib2to3",
        "pydoc_data",
        "site-packages",
        "test",
        "tests",
        "turtledemo",
    }
)

# A paragraph is prose when at least this share of its words are plain words.
MIN_PLAIN_WORD_SHARE = 0.7
MIN_WORDS = 3

_UNDERLINE = re.compile(r"^\s*([*=\-~^#+])\1{2,}\s*$")
_BULLET = re.compile(r"^(?:[*\-+]|\d+\.|\(\d+\))\s+")
_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]*)`")
_EMPHASIS = re.compile(r"\*{1,2}(\w[^*]*?)\*{1,2}")
_PLAIN_WORD = re.compile(
    r"^[(\"'“]?(?:[A-Za-z][a-z]*|[A-Z]+|\d+)(?:[-'’][A-Za-z]+)*[)\"'”]?[.,;:!?)]*$"
)
_CODE_LINE = re.compile(r"^\s*(?:>>>|\.\.\.\s|\.\.\.$|\$ |%)|::=")


@dataclasses.dataclass(frozen=True)
class Document:
    source: str  # REFERENCE or DOCSTRING
    name: str  # the topic, or the file's path inside the standard library ("json/decoder.py")
    paragraphs: tuple[str, ...]


def stdlib_dir() -> str:
    """Where this Python's standard library sources are (also inside a virtual environment)."""
    return sysconfig.get_paths()["stdlib"]


def reference_documents() -> list[Document]:
    """One document per topic of the language reference, topics in sorted order."""
    from pydoc_data.topics import topics

    found = (Document(REFERENCE, name, tuple(paragraphs(topics[name]))) for name in sorted(topics))
    return [doc for doc in found if doc.paragraphs]


def docstring_documents(root: str | None = None) -> list[Document]:
    """One document per source file of the standard library at `root` (default: this Python's)
    that has a docstring, files in sorted path order; unreadable files are left out."""
    root = root or stdlib_dir()
    documents = []
    for path in source_files(root):
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a file of another Python version or encoding is not documentation
        found = [p for text in docstrings(tree) for p in paragraphs(text)]
        if found:
            name = os.path.relpath(path, root).replace(os.sep, "/")
            documents.append(Document(DOCSTRING, name, tuple(found)))
    return documents


def documents(root: str | None = None) -> list[Document]:
    """The reference's topics, then the docstrings of every library file."""
    return reference_documents() + docstring_documents(root)


def source_files(root: str) -> list[str]:
    """The `.py` files of the library under `root`, sorted, without the SKIPPED_DIRS, test
    modules and build configuration folders (config-3.x-...)."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(
            d for d in subdirs if d not in SKIPPED_DIRS and not d.startswith(("config-", "."))
        )
        found += [
            os.path.join(directory, f)
            for f in files
            if f.endswith(".py") and not f.startswith("test_")
        ]
    return sorted(found)


def docstrings(tree: ast.Module) -> Iterator[str]:
    """The docstrings of a module and of its classes and functions, in source order."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        text = ast.get_docstring(node, clean=True)
        if text:
            yield text
        children = [
            child
            for child in ast.iter_child_nodes(node)
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        pending += reversed(children)


def paragraphs(text: str) -> list[str]:
    """The prose paragraphs of a plain-text document, each as one line with markup removed."""
    found = []
    for block in _blocks(text):
        if not any(_CODE_LINE.search(line) for line in block):
            paragraph = _clean(" ".join(line.strip() for line in block))
            if is_prose(paragraph):
                found.append(paragraph)
    return found


def is_prose(paragraph: str) -> bool:
    """Whether a paragraph (markup removed) reads as words: at least MIN_WORDS words and most
    of them plain, where code has identifiers with underscores, dots, brackets and operators."""
    words = paragraph.split()
    if len(words) < MIN_WORDS:
        return False
    plain = sum(1 for word in words if _PLAIN_WORD.match(word))
    return plain >= MIN_PLAIN_WORD_SHARE * len(words)


def _blocks(text: str) -> Iterator[list[str]]:
    """Runs of non-blank lines. A heading (a line over an underline) is dropped: it is a title,
    not a sentence. A bullet line starts a new block (list items are paragraphs)."""
    block: list[str] = []
    for line in text.split("\n"):
        if _UNDERLINE.match(line):
            block = block[:-1]  # the heading above it
        if not line.strip() or _UNDERLINE.match(line):
            if block:
                yield block
            block = []
            continue
        if _BULLET.match(line.strip()) and block:
            yield block
            block = []
        block.append(_BULLET.sub("", line.strip(), count=1) if not block else line)
    if block:
        yield block


def _clean(paragraph: str) -> str:
    text = _ROLE.sub(r"\1", paragraph)
    text = _EMPHASIS.sub(r"\1", text).replace("`", "")
    return " ".join(text.split())
