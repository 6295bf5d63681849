"""The end-of-run table: numbers formatted by hand-checked rules, columns aligned, a baseline
column (with its header) only when a row has a baseline, and a long last cell that does not
push the baseline column to the right."""

import pytest

from bert_jax.report_table import SummaryTable, align, duration, format_value


@pytest.mark.parametrize(
    "value, shown",
    [
        (1234567, "1,234,567"),
        (0, "0"),
        (0.123456, "0.1235"),
        (6.81234, "6.8123"),
        (0.0, "0.0000"),
        (2.5e-5, "2.500e-05"),
        (12345.67, "12,345.7"),
        (float("nan"), "nan"),
        (None, "-"),
        (True, "true"),
        ("6 of 6", "6 of 6"),
    ],
)
def test_values(value, shown):
    assert format_value(value) == shown


@pytest.mark.parametrize(
    "seconds, shown",
    [(0.04, "0.0 s"), (41.23, "41.2 s"), (59.94, "59.9 s"), (723, "12 min 03 s"),
     (7509.4, "2 h 05 min 09 s")],
)  # fmt: skip
def test_duration(seconds, shown):
    assert duration(seconds) == shown


def test_without_baselines_no_header_and_the_rules_as_wide_as_the_widest_line():
    table = SummaryTable("prepare: summary")
    table.add("documents", 60).add("tokens", 12345).add("time", "1.2 s")
    assert table.render() == "\n".join(
        [
            "prepare: summary",
            "=================",
            "documents  60",
            "tokens     12,345",
            "time       1.2 s",
            "=================",
        ]
    )


def test_baseline_column_header_and_a_long_last_cell():
    path = "/a/very/long/path/to/the/checkpoints/of/the/run/that/goes/on"
    table = SummaryTable("pretraining: summary")
    table.add("steps", "6 of 6")
    table.add("eval mlm_accuracy", 0.12345, (0.0567, "most frequent token"))
    table.add("eval nsp_accuracy", 0.55, (0.5, ""))
    table.add("eval loss", 5.4058)
    table.add("checkpoints", path)
    width = 19 + len(path)  # the widest line: the path, past the value column (6 wide)
    assert table.render() == "\n".join(
        [
            "pretraining: summary",
            "=" * width,
            "                   value   baseline",
            "-" * width,
            "steps              6 of 6",
            "eval mlm_accuracy  0.1235  0.0567 (most frequent token)",
            "eval nsp_accuracy  0.5500  0.5000",
            "eval loss          5.4058",
            f"checkpoints        {path}",
            "=" * width,
        ]
    )


def test_align_widths_come_from_rows_with_a_cell_after_the_column():
    lines = align([("a", "bb", "c"), ("dddd", "e"), ("f", "a-long-last-cell"), ("g", "", "")])
    assert lines == ["a     bb  c", "dddd  e", "f     a-long-last-cell", "g"]
    # Every second cell starts at the same offset.
    seconds = ["bb", "e", "a-long-last-cell"]
    assert {line.index(cell) for line, cell in zip(lines[:3], seconds, strict=True)} == {6}
