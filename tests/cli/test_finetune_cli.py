"""`bert-jax finetune` refuses bad input before training, in one line with exit status 2: an
unknown task (naming the known ones), a vocabulary that is not the checkpoint's, a missing TSV
column; and it starts a new task from a run fine-tuned for another one, dropping that run's head
and saying so."""

from __future__ import annotations

import pathlib

import pytest

from bert_jax import main as cli
from tests.tasks import glue_fixtures as world
from tests.tasks.finetuned_run import finetuned_copy

REPO = pathlib.Path(__file__).resolve().parents[2]


def finetune(*args: str) -> list[str]:
    return ["finetune", f"--config={REPO}/configs/glue.py:{args[0]}", *args[1:]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return world.glue_world(tmp_path_factory.mktemp("glue_world"))


def test_an_unknown_task_names_the_known_ones(tmp_path, capsys):
    assert cli.main(finetune("mrcp", f"--workdir={tmp_path}")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown task 'mrcp'" in err
    assert "cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli" in err
    assert cli.main(finetune("ax", f"--workdir={tmp_path}")) == 2
    assert "predicted by the mnli run" in capsys.readouterr().err


def test_a_vocabulary_that_is_not_the_checkpoints_is_refused(tiny, tmp_path, capsys):
    checkpoint, data = tiny
    other = tmp_path / "vocab.txt"
    other.write_text("\n".join([*world.SPECIAL, *world.WORDS, "extra"]) + "\n")
    args = [f"--workdir={tmp_path / 'run'}", f"--config.init_from={checkpoint}",
            f"--config.data.data_dir={data}", f"--config.data.vocab={other}",
            "--config.data.max_seq_length=32"]  # fmt: skip
    assert cli.main(finetune("mrpc", *args)) == 2
    err = capsys.readouterr().err.strip()
    assert "has 65 entries but the model's embedding table has 64 rows" in err, err
    assert not (tmp_path / "run").exists()  # nothing written


def test_a_tsv_without_the_expected_columns_is_one_line(tiny, tmp_path, capsys):
    checkpoint, _ = tiny
    (tmp_path / "MRPC").mkdir()
    (tmp_path / "MRPC" / "train.tsv").write_text("Quality\tsentence\n1\ta b\n")
    args = [f"--workdir={tmp_path / 'run'}", f"--config.init_from={checkpoint}",
            f"--config.data.data_dir={tmp_path}", "--config.data.max_seq_length=32"]  # fmt: skip
    assert cli.main(finetune("mrpc", *args)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.tsv" in err and "#1 String" in err, err


def test_a_run_fine_tuned_for_another_task_starts_a_new_head(tmp_path_factory, tmp_path, capsys):
    mrpc_run = finetuned_copy(tmp_path_factory, "another_task")
    words = world.WORDS  # the fine-tuned run's own vocabulary holds none of these: [UNK]s
    rows = ["sentence\tlabel"] + [f"{words[i]} {words[i + 1]}\t{i % 2}" for i in range(16)]
    (tmp_path / "SST-2").mkdir()
    for split in ("train", "dev"):
        (tmp_path / "SST-2" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    args = [f"--workdir={tmp_path / 'run'}", f"--config.init_from={mrpc_run}",
            f"--config.data.data_dir={tmp_path}", "--config.data.max_seq_length=32",
            "--config.train.batch_size=8", "--config.train.num_steps=2",
            "--config.train.eval_batch_size=8"]  # fmt: skip
    assert cli.main(finetune("sst2", *args)) == 0
    out, err = capsys.readouterr()
    assert "was fine-tuned for glue/mrpc: its head is dropped" in err, err
    assert "dropped 2" in out and "new: classifier/bias, classifier/kernel" in out, out
    assert (tmp_path / "run" / "eval_results.json").is_file()
