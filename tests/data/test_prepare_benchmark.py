"""`prepare_benchmark` runs and reports both rates on a tiny corpus."""

from __future__ import annotations

import pytest

from bert_jax.data.prepare_benchmark import prepare_benchmark

pytest.importorskip("transformers", reason="BertTokenizerFast is the reference")


def test_prepare_benchmark_reports_both_rates(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abc.", "##a"]))
    (tmp_path / "book.txt").write_text("Ab. Ca.\n\nBa.\n\nCc ab.\n\nAa.\n\nB.\n\n" * 20)
    figures = prepare_benchmark(f"{tmp_path}/book.txt", str(vocab), all_cores=False, repeats=1)
    assert figures["sentences"] == 120
    assert figures["prepare_mb_per_s_per_core"] > 0
    assert figures["reference_mb_per_s_per_core"] > 0
    references = figures["references_mb_per_s_per_core"]
    assert set(references) == {"tokenizers encode_batch_fast", "BertTokenizerFast"}
