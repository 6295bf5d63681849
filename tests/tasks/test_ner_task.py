"""CoNLL-2003 NER on the trainer: rows and first-piece labels against Hugging Face's
`BertTokenizerFast.word_ids()` on real CoNLL sentences, the loss against PyTorch's cross-entropy
with -100 labels, long sentences split into rows and joined back, the predictions file, and a tiny
end-to-end fine-tune (the random 2-layer checkpoint of tests/tasks/glue_fixtures.py; words w0..w5
are persons, w6..w11 places)."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

from bert_jax.checkpoint import metadata as layout
from bert_jax.errors import UserError
from bert_jax.tasks import conll, ner, ner_metrics
from bert_jax.tasks.token_classification import TokenClassificationTask, word_predictions
from bert_jax.text.load import load_tokenizer
from bert_jax.trainer import loop
from bert_jax.trainer import step as train_step
from tests.conftest import shared_path
from tests.tasks import glue_fixtures as world

MAX_LENGTH = 16  # rows of at most 14 pieces: the long fixture sentences are split


def tag_of(word: str) -> str:
    k = int(re.match(r"w(\d+)", word).group(1))
    return "PER" if k < 6 else "LOC" if k < 12 else ""


def tagged(words: list[str]) -> list[str]:
    """IOB1 tags: entity words of one type next to each other form one chunk."""
    return ["O" if not tag_of(w) else f"I-{tag_of(w)}" for w in words]


def conll_text(rng, sentences: int, long_every: int = 0) -> str:
    lines = []
    for i in range(sentences):
        if i % 5 == 0:
            lines += ["-DOCSTART- -X- O O", ""]
        n = 20 if long_every and i % long_every == 0 else int(rng.integers(2, 9))
        words = [str(w) for w in rng.choice(world.WORDS, size=n)]
        if rng.random() < 0.3:  # a word of three pieces: w1 [UNK] w2 ("-" is not in the vocab)
            words[0] = f"{words[0]}-w20"
        lines += [f"{w} NN I-NP {t}" for w, t in zip(words, tagged(words), strict=True)] + [""]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ner_world")
    checkpoint = world.write_checkpoint(root / "checkpoint")
    data = root / "conll"
    data.mkdir()
    rng = np.random.default_rng(0)
    (data / "eng.train").write_text(conll_text(rng, 96, long_every=24))
    (data / "eng.testa").write_text(conll_text(rng, 20, long_every=7))
    (data / "eng.testb").write_text(conll_text(rng, 12))
    return checkpoint, data


def ner_config(checkpoint, data_dir, **overrides):
    from configs import ner as ner_configs

    config = ner_configs.get_config("conll2003")
    config.init_from = str(checkpoint)
    config.data.data_dir = str(data_dir)
    config.data.max_seq_length = MAX_LENGTH
    config.data.pad_multiple = MAX_LENGTH  # one shape: one compilation per step function
    config.train.batch_size = 8
    config.train.eval_batch_size = 8
    config.train.num_epochs = 3.0
    config.train.log_every_steps = 1
    config.optimizer.learning_rate = 3e-3
    config.checkpoint.save_every_minutes = 0
    for key, value in overrides.items():
        section, field = key.split(".")
        config[section][field] = value
    config.lock()
    return config


def build(config, eval_batch_size=8, notes=None):
    return ner.build(
        config, None, None, eval_batch_size, [].append if notes is None else notes.append
    )


# --- rows and labels ------------------------------------------------------------------------


def test_first_pieces_match_hugging_face_word_ids(uncased_vocab):
    transformers = pytest.importorskip("transformers")
    sentences = conll.read_file(shared_path("conll2003", "eng.testa"))[:400]
    reference = transformers.BertTokenizerFast(str(uncased_vocab), do_lower_case=True)
    tokenizer = load_tokenizer(uncased_vocab, lowercase=True)
    labels = sorted({t for s in sentences for t in s.tags})
    features = ner.encode_words(
        tokenizer, [s.words for s in sentences], [s.tags for s in sentences], labels, 512
    )
    assert len(features) == len(sentences) and features.split_sentences == 0
    for r, sentence in enumerate(sentences):
        encoding = reference(list(sentence.words), is_split_into_words=True)
        assert features.input_ids[r].tolist() == encoding["input_ids"], sentence.line
        word_ids = encoding.word_ids()
        first = [j for j, w in enumerate(word_ids) if w is not None and w != word_ids[j - 1]]
        assert features.positions[r].tolist() == first, sentence.line
        assert features.words[r].tolist() == [word_ids[j] for j in first]
        assert [labels[i] for i in features.label_ids[r]] == [
            sentence.tags[w] for w in features.words[r]
        ]


def test_long_sentences_become_rows_and_join_back(uncased_vocab):
    tokenizer = load_tokenizer(uncased_vocab, lowercase=True)
    words = [["a"] * 5, ["unaffable", "x", "y", "z", "hello", "world"], ["antidisestablishment"]]
    tags = [["O", "I-PER", "I-PER", "O", "B-PER"], ["I-LOC"] + ["O"] * 5, ["I-ORG"]]
    labels = ("B-PER", "I-LOC", "I-ORG", "I-PER", "O")
    pieces = [len(tokenizer.encode(w)) for w in words[1]]
    assert pieces[0] > 1  # a word of several pieces: only its first is labelled
    features = ner.encode_words(tokenizer, words, tags, labels, max_length=6)  # 4 pieces a row
    assert features.split_sentences == 2 and features.cut_words == 1
    assert features.sentence.tolist()[:2] == [0, 0] and features.sentence[-1] == 2
    for r in range(len(features)):
        assert len(features.input_ids[r]) <= 6
        assert features.input_ids[r][0] == tokenizer.cls_id
        assert features.input_ids[r][-1] == tokenizer.sep_id
    # Each word sits in exactly one row, in order.
    for s in range(3):
        rows = np.flatnonzero(features.sentence == s)
        assert np.concatenate([features.words[r] for r in rows]).tolist() == list(
            range(len(words[s]))
        )
    # A "model" that predicts each position's gold label: the joined tags are the gold tags.
    batch = ner.with_token_labels(
        {
            "input_ids": np.zeros((len(features) + 1, 6), np.int32),
            "rows": np.array([*range(len(features))[::-1], -1], np.int32),
        },
        features,
    )
    outputs = [{"predicted": batch["labels"], "rows": batch["rows"]}]
    assert word_predictions(features, outputs, labels) == [list(t) for t in tags]
    assert batch["label_weights"][-1].sum() == 0  # the filler row weighs nothing
    assert batch["label_weights"].sum() == sum(len(t) for t in tags)


def test_loss_equals_pytorch_cross_entropy_with_ignored_tokens():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 7, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=(3, 7)).astype(np.int32)
    weights = (rng.random((3, 7)) < 0.6).astype(np.float32)
    weights[2] = 0  # a filler row
    batch = {"labels": labels, "label_weights": weights}
    task = TokenClassificationTask("t", world.CONFIG, tuple("abcde"), "f1", 7)
    ours = task.loss(task.loss_sums(logits, batch), task.normalisers(batch))
    target = torch.tensor(np.where(weights > 0, labels, -100), dtype=torch.long)
    theirs = torch.nn.functional.cross_entropy(
        torch.tensor(logits).reshape(-1, 5), target.reshape(-1), ignore_index=-100
    )
    assert float(ours) == pytest.approx(float(theirs), rel=1e-6)


def test_predictions_file(tmp_path):
    (tmp_path / "f").write_text(
        "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nsays VBZ I-VP O\n\nPeter NNP I-NP I-PER\n\n"
        "-DOCSTART- -X- O O\n\nRome NNP I-NP I-LOC\n"
    )
    sentences = conll.read_file(tmp_path / "f")
    predicted = [["I-ORG", "I-ORG"], ["O"], ["I-LOC"]]
    text = ner.conll_predictions(sentences, predicted)
    assert text == (
        "-DOCSTART- O O\n\nEU I-ORG I-ORG\nsays O I-ORG\n\nPeter I-PER O\n\n"
        "-DOCSTART- O O\n\nRome I-LOC I-LOC\n\n"
    )
    # conlleval's reading: one column count on every line; sentences end at blank lines.
    lines = [line.split() for line in text.splitlines()]
    assert {len(fields) for fields in lines if fields} == {3}
    gold, guess, g, p = [], [], [], []
    for fields in [*lines, []]:
        if fields and fields[0] != conll.DOCSTART:
            g.append(fields[1])
            p.append(fields[2])
        elif g:
            gold, guess, g, p = [*gold, g], [*guess, p], [], []
    assert ner_metrics.score(gold, guess) == ner_metrics.score(
        [s.tags for s in sentences], predicted
    )
    with pytest.raises(UserError, match=r"f line 6: 2 predicted tags for 1 words"):
        ner.conll_predictions(sentences, [["O", "O"], ["O", "O"], ["O"]])


# --- the task on the trainer ----------------------------------------------------------------


def test_build_reports_splits_and_labels(tiny):
    notes = []
    task = build(ner_config(*tiny), notes=notes)
    assert task.labels == ("I-LOC", "I-PER", "O")
    assert task.main_metric == "testa/f1"
    assert task.data.evaluation_splits == ("testa", "testb")
    train = task.data.train_features
    assert train.split_sentences == 4 and len(train) == 96 + 4
    assert task.plan(ner_config(*tiny)).num_steps == 3 * 13  # ceil(100 rows / 8) per epoch
    assert any(
        n.startswith("note: CoNLL-2003 train: 4 sentences longer than 14 pieces") for n in notes
    )
    assert task.checkpoint_metadata()["labels"] == ["I-LOC", "I-PER", "O"]
    batch = next(task.data.train(None))
    assert batch["labels"].shape == batch["input_ids"].shape == (8, MAX_LENGTH)
    # Labelled positions: first pieces only ([CLS], [SEP], padding and later pieces weigh 0).
    starts = np.isin(batch["input_ids"], [i for i in range(5, 64)])  # whole words (w0..w58)
    assert np.all(batch["label_weights"] <= starts)


def test_metrics_do_not_depend_on_the_eval_batch_size(tiny):
    task = build(ner_config(*tiny))
    params = task.init_params(jax.random.PRNGKey(3), task.example_batch())
    step = jax.jit(train_step.make_eval_step(task))
    results = []
    for size in (8, 5):
        data = ner.WordData(**{**vars(task.data), "eval_batch_size": size, "_eval_batches": None})
        outputs = [step(params, batch) for batch in data.evaluation()["testa"]]
        results.append(task.evaluate("testa", jax.device_get(outputs)))
    assert results[0].keys() == results[1].keys() >= {"precision", "recall", "f1", "loss"}
    assert {k: v for k, v in results[0].items() if k != "loss"} == {
        k: v for k, v in results[1].items() if k != "loss"
    }
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-5)


def test_fine_tune_end_to_end(tiny, tmp_path, capsys):
    config = ner_config(*tiny)
    summaries = loop.train_and_evaluate(config, str(tmp_path / "run"), ner.build)
    out = capsys.readouterr().out
    losses = [float(x) for x in re.findall(r"train step \d+: loss=([\d.]+)", out)]
    assert len(losses) == 39 and summaries.finished
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3]), losses
    for split in ("testa", "testb"):
        assert {f"eval/{split}/{k}" for k in ("precision", "recall", "f1", "loss")} <= set(
            summaries
        )
        assert {f"eval/{split}/PER/f1", f"eval/{split}/LOC/f1"} <= set(summaries)
    assert summaries["eval/testa/f1"] > 0.9, summaries
    root, step = layout.resolve(tmp_path / "run")
    metadata = layout.read_metadata(root / str(step))
    assert (metadata["task"], metadata["model_kind"]) == ("ner/conll2003", "token_classification")
    assert metadata["labels"] == ["I-LOC", "I-PER", "O"] and metadata["scheme"] == "iob1"


def test_bad_inputs(tiny, tmp_path):
    checkpoint, data = tiny
    with pytest.raises(UserError, match="exceeds the position table"):
        build(ner_config(checkpoint, data, **{"data.max_seq_length": 65}))
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("eng.testa", "eng.testb"):
        (bad / name).write_text((data / name).read_text())
    (bad / "eng.train").write_text("w1 NN I-NP I-PER\nw2 NN I-PER\n")
    with pytest.raises(UserError, match=r"eng.train line 2: 3 columns, expected 4"):
        build(ner_config(checkpoint, bad))
