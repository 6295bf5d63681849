"""Reading the standard library's documentation: prose kept, code and markup left out, files
walked in a fixed order."""

import ast

from bert_jax.data import stdlib_docs

REFERENCE_LIKE = """\
Assignment statements
*********************

Assignment statements are used to (re)bind names to values and to
modify attributes or items of mutable objects:

   assignment_stmt ::= (target_list "=")+ (starred_expression | yield_expression)
   target_list     ::= target ("," target)* [","]

* If the target list is a single target with no trailing comma,
  optionally in parentheses, the object is assigned to that target.

* Else: the object must be an *iterable* with as many items as there
  are targets.

   >>> a, b = 1, 2
   >>> a
   1

   x[slice(1, 2, None)] = value
"""


def test_paragraphs_keep_prose_and_drop_code():
    assert stdlib_docs.paragraphs(REFERENCE_LIKE) == [
        "Assignment statements are used to (re)bind names to values and to modify attributes "
        "or items of mutable objects:",
        "If the target list is a single target with no trailing comma, optionally in "
        "parentheses, the object is assigned to that target.",
        "Else: the object must be an iterable with as many items as there are targets.",
    ]


def test_markup_is_removed():
    text = "Return the :func:`len` of ``obj`` as an *int*;\nsee `Sized` and **PEP 8**."
    assert stdlib_docs.paragraphs(text) == ["Return the len of obj as an int; see Sized and PEP 8."]


def test_is_prose():
    assert stdlib_docs.is_prose("Return a new list holding the items of the iterable.")
    assert stdlib_docs.is_prose("New in version 3.9 (see PEP 584).")
    assert not stdlib_docs.is_prose("class_of_obj = type(obj)")
    assert not stdlib_docs.is_prose("@f1(arg) @f2 def func(): pass")
    assert not stdlib_docs.is_prose("Two words")  # fewer than MIN_WORDS
    # Shell and doctest lines drop their whole paragraph, however wordy.
    assert stdlib_docs.paragraphs("Create one with\n$ python -m venv env") == []
    assert stdlib_docs.paragraphs("The result is printed:\n>>> print(a)") == []


def test_docstrings_in_source_order():
    tree = ast.parse(
        '"""Module."""\n'
        'class A:\n    """Class A."""\n    def f(self):\n        """Method f."""\n'
        'def g():\n    """Function g."""\n    def inner():\n        """Inner."""\n'
        "def h():\n    pass\n"
    )
    assert list(stdlib_docs.docstrings(tree)) == [
        "Module.",
        "Class A.",
        "Method f.",
        "Function g.",
        "Inner.",
    ]


def test_library_files_sorted_without_tests_and_skipped_folders(tmp_path):
    doc = '"""{} holds the parser of the configuration language."""\n'
    for name in ("zeta.py", "alpha.py", "pkg/beta.py", "test/gamma.py", "pkg/test_delta.py",
                 "idlelib/editor.py", "site-packages/thirdparty.py"):  # fmt: skip
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc.format(name))
    (tmp_path / "broken.py").write_text("def (:\n")  # another Python's syntax: left out
    documents = stdlib_docs.docstring_documents(str(tmp_path))
    assert [d.name for d in documents] == ["alpha.py", "pkg/beta.py", "zeta.py"]
    beta = "pkg/beta.py holds the parser of the configuration language."
    assert documents[1].paragraphs == (beta,)
    assert {d.source for d in documents} == {stdlib_docs.DOCSTRING}


def test_this_pythons_reference_topics():
    from pydoc_data.topics import topics

    documents = stdlib_docs.reference_documents()
    names = [d.name for d in documents]
    assert names == sorted(names) and set(names) <= set(topics)
    assert len(documents) > 0.9 * len(topics)
    assignment = documents[names.index("assignment")].paragraphs
    assert assignment[0].startswith("Assignment statements are used to (re)bind names to values")
    assert not any("::=" in p or ">>>" in p for d in documents for p in d.paragraphs)
