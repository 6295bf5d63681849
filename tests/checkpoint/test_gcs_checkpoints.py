"""Checkpoints on gs://, against a local GCS emulator (tests/gcs.py): Orbax writes the arrays
through tensorstore and everything else goes through `bert_jax.paths` (gcsfs). A gs:// workdir
saves, restores and resumes like a local one and never becomes a local directory named `gs:`;
`bert-jax checkpoints` lists and exports it; `init_from` reads our workdirs and Hugging Face
directories from the bucket; a missing bucket is one line and exit 2 with nothing written."""

import json
import os
import pathlib

import numpy as np
import pytest

from bert_jax import main as cli
from bert_jax import paths
from bert_jax.checkpoint import init_from
from bert_jax.checkpoint import manager as checkpointing
from bert_jax.errors import UserError
from tests.checkpoint import fixtures as fx
from tests.checkpoint.test_manager import assert_trees_equal, scratch_never_called

pytest_plugins = ["tests.gcs"]


@pytest.fixture
def model():
    return fx.pretraining()


def test_save_restore_and_resume_in_a_gs_workdir(gcs_bucket, model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a gs:// path taken for a local one would appear here
    state = fx.make_state(model, fx.mesh(1, 8, 1))
    workdir = f"{gcs_bucket}/run"
    meta = fx.metadata(fingerprint=None)
    with checkpointing.Checkpointer(workdir, fx.options(), meta) as ckpt:
        assert ckpt.save(3, state, {"batches": 3}, metrics={"loss": 2.5})
    from tests.gcs import reset_gcs_clients

    reset_gcs_clients()  # a new process would see only what is on the bucket
    target = fx.abstract_state(model, fx.mesh(2, 2, 2))  # another mesh
    with checkpointing.Checkpointer(workdir, fx.options(), meta) as ckpt:
        assert ckpt.all_steps() == [3]
        restored, data_state, source = checkpointing.resume_or_init(
            ckpt, fx.run_config(), target, scratch_never_called
        )
        assert ckpt.save(4, restored, {"batches": 4})  # the resumed run saves again
    assert_trees_equal(restored, state)
    assert data_state == {"batches": 3}
    assert source == f"resumed from step 3 of {workdir}"
    assert os.listdir(tmp_path) == []
    stored = json.loads(paths.path(f"{workdir}/checkpoints/3/metadata/metadata").read_text())
    assert stored["model"] == fx.TINY.to_dict()

    # `bert-jax checkpoints gs://...`: the listing, then an export to the bucket ...
    assert cli.main(["checkpoints", workdir, "--json"]) == 0
    vocab = tmp_path / "vocab.txt"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [f"tok{i}" for i in range(fx.TINY.vocab_size - len(tokens))]
    vocab.write_text("".join(f"{token}\n" for token in tokens))
    export = f"{gcs_bucket}/hf"
    argv = ["checkpoints", workdir, "--export=4", f"--to={export}", f"--vocab={vocab}"]
    assert cli.main(argv) == 0
    names = sorted(p.name for p in paths.path(export).iterdir())
    assert names == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    # ... and both read back as init_from sources: our workdir and the Hugging Face directory.
    target_params = fx.abstract_params(model)
    for source, fmt in [(workdir, "bert-jax"), (export, "hf")]:
        params, report = init_from.load_encoder(source, target_params)
        assert report.format == fmt and not report.new, report.summary()
        np.testing.assert_array_equal(
            params["bert"]["embeddings"]["word_embeddings"]["embedding"],
            np.asarray(state.params["bert"]["embeddings"]["word_embeddings"]["embedding"]),
        )
    assert os.listdir(tmp_path) == ["vocab.txt"]


def test_listing_shows_steps_and_sizes(gcs_bucket, model, capsys):
    workdir = f"{gcs_bucket}/run"
    state = fx.random_state(model)
    with checkpointing.Checkpointer(workdir, fx.options(), fx.metadata()) as ckpt:
        ckpt.save(2, state, {"batches": 2}, metrics={"loss": 3.25})
    capsys.readouterr()
    assert cli.main(["checkpoints", workdir, "--json"]) == 0
    listing = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert listing["directory"] == f"{workdir}/checkpoints"
    (row,) = listing["checkpoints"]
    assert row["step"] == 2 and row["metrics"] == {"loss": 3.25}
    assert row["data_state"] == {"batches": 2} and row["bytes"] > 10_000


def test_a_missing_bucket_is_one_line_and_writes_nothing(gcs_emulator, tmp_path, capsys):
    missing = "gs://no-such-bucket-h2/run"
    with pytest.raises(UserError, match="cannot access gs://no-such-bucket-h2/run/checkpoints"):
        checkpointing.Checkpointer(missing, fx.options(), fx.metadata())
    for argv in (
        ["checkpoints", missing],
        ["convert", f"--from={missing}", f"--to={tmp_path}/out"],
    ):
        code = cli.main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "no-such-bucket-h2" in err, (argv, err)
    assert sorted(os.listdir(tmp_path)) == []
    assert not pathlib.Path("gs:").exists()
