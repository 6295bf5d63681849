"""`load_pretrained` recognises each checkpoint kind, returns the layout asked for, and says
what is wrong with a path that is none of them."""

import json

import jax
import numpy as np
import pytest

from bert_jax.errors import UserError
from bert_jax.interop import hf, layout, load
from tests.interop.reference import TINY


@pytest.fixture(scope="module")
def hf_dir(hf_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf")
    hf_model.save_pretrained(directory)
    (directory / "vocab.txt").write_text("".join(f"t{i}\n" for i in range(TINY["vocab_size"])))
    return directory


def test_hf_directory_in_either_layout(hf_dir):
    assert load.detect_format(hf_dir) == "hf"
    config, unrolled, report = load.load_pretrained(hf_dir)
    assert report["format"] == "hf" and not config.scan_layers
    config, scanned, _ = load.load_pretrained(hf_dir, scan_layers=True)
    assert config.scan_layers and layout.is_scanned(scanned)
    jax.tree.map(np.testing.assert_array_equal, layout.unscan_layers(scanned), unrolled)
    assert load.vocab_beside(hf_dir) == hf_dir / "vocab.txt"


def test_bert_jax_checkpoint_written_scanned_reads_back_unrolled(hf_dir, tmp_path):
    checkpointing = pytest.importorskip("bert_jax.checkpoint.manager")
    config, params, _ = hf.load_hf(hf_dir)
    scanned = layout.scan_layers(params)
    metadata = {"model": config.replace(scan_layers=True).to_dict(), "scan_layers": True}
    with checkpointing.Checkpointer(tmp_path, {"async_save": False}, metadata) as ckpt:
        ckpt.save(7, {"params": scanned, "step": np.int32(7)}, None, force=True)
        ckpt.wait()
    assert load.detect_format(tmp_path) == "bert-jax"
    loaded_config, loaded, report = load.load_pretrained(tmp_path)
    assert report["format"] == "bert-jax" and report["missing"] == [] and report["unused"] == []
    assert loaded_config == config
    jax.tree.map(np.testing.assert_array_equal, loaded, params)


def test_missing_path(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load.load_pretrained(tmp_path / "nothing")


def test_config_without_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    with pytest.raises(UserError, match="config.json is there but no weights"):
        load.load_pretrained(tmp_path)


def test_bert_config_without_checkpoint(tmp_path):
    (tmp_path / "bert_config.json").write_text(json.dumps(TINY))
    with pytest.raises(UserError, match="bert_config.json is there but no TF checkpoint"):
        load.load_pretrained(tmp_path)


def test_unknown_directory(tmp_path):
    with pytest.raises(UserError, match="is not a Hugging Face directory"):
        load.load_pretrained(tmp_path)


def test_report_text_names_the_missing_heads(hf_model, tmp_path):
    hf_model.bert.save_pretrained(tmp_path)
    _, _, report = load.load_pretrained(tmp_path)
    text = load.format_report(report)
    assert "loaded 55 params, missing 7, unused 0" in text
    assert "missing (not in the checkpoint): mlm_transform/kernel" in text
