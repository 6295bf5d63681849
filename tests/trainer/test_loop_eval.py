"""Evaluation never costs a run its checkpoints: a missing or empty held-out split (older
`prepare` wrote empty eval files) is found at setup, where training goes on without evaluation
after one warning line; an evaluation that fails still lets the step it followed be saved."""

import pathlib

import pytest

from bert_jax import sharding
from bert_jax.data.corpus_readers import CorpusSpec
from bert_jax.data.prepare import PrepareOptions, prepare
from bert_jax.tasks import pretraining
from bert_jax.tasks import pretraining_data as pretrain_data
from bert_jax.trainer import loop as train
from configs import pretrain
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> pathlib.Path:
    """Train shards of a novel's first ~40 KB (the real `prepare`), with an empty eval file in
    place of the held-out split, as older versions wrote one when no document was held out."""
    novel = shared_path("corpus", "gutenberg", "austen-persuasion.txt")
    vocab = shared_path("vocab", "bert-base-uncased", "vocab.txt")
    root = tmp_path_factory.mktemp("eval")
    (root / "text.txt").write_text(novel.read_text(encoding="utf-8")[:40_000], encoding="utf-8")
    out = root / "shards"
    spec = CorpusSpec(format="prose", inputs=(str(root / "text.txt"),), prose_documents="paragraph")
    prepare(PrepareOptions(corpus=spec, output=str(out), vocab=str(vocab), num_shards=1,
                           eval_fraction=0.1, progress=False))  # fmt: skip
    for held_out in out.glob("eval-*"):
        held_out.unlink()
    (out / "eval-00000-of-00001.tfrecord").write_bytes(b"")  # a TFRecord file of no records
    return out


def config(num_steps=4, **data):
    c = pretrain.get_config("tiny,runlocal")
    c.model.dtype = "float32"
    c.train.num_steps = num_steps
    c.train.eval_every_steps = 2
    c.checkpoint.save_every_steps = 2
    c.optimizer.warmup_steps = 1
    for key, value in data.items():
        setattr(c.data, key, value)
    c.lock()
    return c


def saved_steps(workdir: pathlib.Path) -> list[int]:
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning:")]


def test_an_empty_eval_split_trains_without_evaluation_and_saves(shards, tmp_path, capsys):
    summaries = train.train_and_evaluate(
        config(data_dir=str(shards)), str(tmp_path), pretraining.build
    )
    assert saved_steps(tmp_path) == [2, 4]
    assert "train/loss" in summaries and not any(k.startswith("eval/") for k in summaries)
    (line,) = warnings(capsys.readouterr().err)
    assert "hold no examples" in line and "training runs without evaluation" in line


def test_a_missing_eval_split_is_one_warning_at_setup(shards, tmp_path):
    data_dir = tmp_path / "no_eval"
    data_dir.mkdir()
    for path in shards.iterdir():
        if not path.name.startswith("eval-") and path.is_file():
            (data_dir / path.name).write_bytes(path.read_bytes())
    said = []
    feed = sharding.host_feed(sharding.make_mesh(config().mesh))
    data = pretrain_data.open_data(config(data_dir=str(data_dir)), 8, feed, warn=said.append)
    assert not data.has_eval
    (line,) = warnings("\n".join(said))
    assert "has no eval split; training runs without evaluation" in line


def test_a_failing_evaluation_still_saves_the_step_before_the_error(tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(train, "split_outputs", broken)
    c = config(num_steps=4, synthetic=True)
    with c.unlocked():
        c.model.vocab_size = 128
        c.checkpoint.save_every_steps = 1000  # no save due at the evaluation of step 2
    with pytest.raises(RuntimeError, match="evaluation broke"):
        train.train_and_evaluate(c, str(tmp_path), pretraining.build)
    assert saved_steps(tmp_path) == [2]
