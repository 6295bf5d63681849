"""`bert-jax convert`: a Hugging Face or Google TF1 checkpoint converted to a Hugging Face
directory loads into `transformers.BertForPreTraining` with no missing or unexpected weights
and computes what the source model computes; to bert-jax it reads back equal; bad input exits 2
with one line."""

import os

os.environ.setdefault("USE_TF", "0")

import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bert_jax import main as cli  # noqa: E402
from bert_jax.interop import hf, load  # noqa: E402
from tests.interop.reference import TINY, hf_outputs, max_diff, random_hf_model  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def source():
    return random_hf_model(seed=1)


@pytest.fixture(scope="module")
def hf_dir(source, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_hf")
    source.save_pretrained(directory)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [f"t{i}" for i in range(TINY["vocab_size"] - len(tokens))]
    (directory / "vocab.txt").write_text("".join(f"{token}\n" for token in tokens))
    return directory


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(1)
    mask = np.array([[1] * 10, [1] * 6 + [0] * 4])
    ids = np.where(mask == 1, rng.integers(5, TINY["vocab_size"], (2, 10)), 0)
    segments = np.where(np.arange(10) >= 4, 1, 0)[None].repeat(2, 0) * mask
    return {"input_ids": ids, "segment_ids": segments, "input_mask": mask}


def loads_cleanly(directory) -> object:
    model, info = transformers.BertForPreTraining.from_pretrained(
        directory, output_loading_info=True, attn_implementation="eager"
    )
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    assert info["mismatched_keys"] == []
    return model.eval()


def test_hf_to_hf_in_a_subprocess(source, hf_dir, batch, tmp_path):
    target = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "bert_jax", "convert", f"--from={hf_dir}", f"--to={target}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "loaded 62 params, missing 0, unused 0" in result.stdout
    assert (target / "vocab.txt").read_text() == (hf_dir / "vocab.txt").read_text()
    converted = loads_cleanly(target)
    diffs = max_diff(hf_outputs(converted, batch), hf_outputs(source, batch), batch["input_mask"])
    assert max(diffs.values()) == 0.0, diffs


def test_google_tf_to_hf(source, batch, tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from tests.interop.google_checkpoint import write_google_checkpoint

    state = {k: v.detach().numpy() for k, v in source.state_dict().items()}
    google = write_google_checkpoint(tmp_path / "google", state)
    target = tmp_path / "out"
    assert cli.main(["convert", f"--from={google / 'bert_model.ckpt'}", f"--to={target}"]) == 0
    assert "(tf): loaded 62 params" in capsys.readouterr().out
    converted = loads_cleanly(target)
    diffs = max_diff(hf_outputs(converted, batch), hf_outputs(source, batch), batch["input_mask"])
    assert max(diffs.values()) == 0.0, diffs


def test_hf_to_bert_jax_reads_back_equal(hf_dir, tmp_path, capsys):
    target = tmp_path / "workdir"
    assert cli.main(["convert", f"--from={hf_dir}", f"--to={target}", "--format=bert-jax"]) == 0
    capsys.readouterr()
    config, params, report = load.load_pretrained(target)
    want_config, want, _ = hf.load_hf(hf_dir)
    assert report["format"] == "bert-jax" and report["missing"] == []
    assert config == want_config
    jax.tree.map(np.testing.assert_array_equal, params, want)
    assert (target / "vocab.txt").is_file()


def one_line_error(argv: list[str], capsys) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


def test_missing_source(tmp_path, capsys):
    line = one_line_error(
        ["convert", f"--from={tmp_path / 'gone'}", f"--to={tmp_path / 'o'}"], capsys
    )
    assert f"checkpoint not found: {tmp_path / 'gone'}" in line


def test_config_without_weights(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text(json.dumps(TINY))
    line = one_line_error(
        ["convert", f"--from={tmp_path / 'src'}", f"--to={tmp_path / 'o'}"], capsys
    )
    assert "config.json is there but no weights" in line


def test_target_not_empty(hf_dir, tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "file").write_text("x")
    line = one_line_error(["convert", f"--from={hf_dir}", f"--to={tmp_path / 'o'}"], capsys)
    assert "exists and is not an empty directory" in line


def test_vocab_mismatch(hf_dir, uncased_vocab, tmp_path, capsys):
    argv = ["convert", f"--from={hf_dir}", f"--to={tmp_path / 'o'}", f"--vocab={uncased_vocab}"]
    line = one_line_error(argv, capsys)
    assert f"{uncased_vocab} has 30522 entries, the embedding table has 1000 rows" in line


def test_shape_mismatch(hf_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes((hf_dir / "model.safetensors").read_bytes())
    (broken / "config.json").write_text(json.dumps({**TINY, "hidden_size": 128}))
    line = one_line_error(["convert", f"--from={broken}", f"--to={tmp_path / 'o'}"], capsys)
    assert "has shape (1000, 64), config wants (1000, 128)" in line
