"""Progress bars: the caller's choice first, then BERT_JAX_PROGRESS, then whether stderr is a
terminal; never on a process other than 0; always on stderr, never on stdout."""

import sys
import types

import pytest

from bert_jax import progress
from bert_jax.errors import UserError


@pytest.fixture
def terminal(monkeypatch):
    """Make stderr look like a terminal (True) or a pipe (False)."""

    def set_tty(is_tty: bool):
        monkeypatch.setattr(sys, "stderr", types.SimpleNamespace(isatty=lambda: is_tty))

    return set_tty


@pytest.mark.parametrize("env", [None, "1", "0"])
def test_the_callers_choice_wins(monkeypatch, env):
    if env is None:
        monkeypatch.delenv(progress.ENV, raising=False)
    else:
        monkeypatch.setenv(progress.ENV, env)
    assert progress.wanted(True) is True and progress.wanted(False) is False


@pytest.mark.parametrize(
    "env, is_tty, shown",
    [(None, True, True), (None, False, False), ("1", False, True), ("yes", False, True),
     ("0", True, False), ("off", True, False)],
)  # fmt: skip
def test_environment_then_terminal(monkeypatch, terminal, env, is_tty, shown):
    if env is None:
        monkeypatch.delenv(progress.ENV, raising=False)
    else:
        monkeypatch.setenv(progress.ENV, env)
    terminal(is_tty)
    assert progress.wanted() is shown


def test_a_bad_setting_is_one_clear_error(monkeypatch):
    monkeypatch.setenv(progress.ENV, "sometimes")
    with pytest.raises(UserError, match="BERT_JAX_PROGRESS='sometimes': expected 1"):
        progress.wanted()


def test_forced_bar_counts_on_stderr_only_on_process_zero(capsys):
    for _ in progress.bar(range(3), desc="work", unit="item", progress=True):
        pass
    out, err = capsys.readouterr()
    assert out == "" and "work: 100%" in err and "3/3" in err
    for _ in progress.bar(range(3), desc="work", progress=True, process_index=1):
        pass
    assert capsys.readouterr() == ("", "")
