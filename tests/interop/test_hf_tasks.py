"""Exports that load anywhere: each fine-tuned task model becomes its transformers class (with
id2label) and computes the same logits; a SentencePiece vocabulary exports as a tokenizer
transformers loads, giving our ids."""

import json

import flax.linen as nn
import jax
import numpy as np
import pytest

from bert_jax.errors import UserError
from bert_jax.interop import hf
from bert_jax.model import heads
from tests.interop.reference import tiny_config

CONFIG = tiny_config()
LABELS = ["B-PER", "I-PER", "O"]


def random_params(model, inputs, seed=0):
    """Random values in our model's param tree, made on the host without compiling its init
    (no zero bias or unit LayerNorm scale hides a swapped tensor)."""
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(seed), *inputs)["params"]
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        value = 0.05 * rng.standard_normal(leaf.shape).astype(np.float32)
        return value + 1.0 if path[-1].key == "scale" else value

    return jax.tree_util.tree_map_with_path(fill, nn.unbox(shapes))


def hf_logits(model, inputs):
    import torch

    ids, segments, mask = (torch.tensor(np.asarray(x), dtype=torch.long) for x in inputs)
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=segments, attention_mask=mask)
    if hasattr(out, "start_logits"):
        return out.start_logits.numpy(), out.end_logits.numpy()
    return out.logits.numpy()


CASES = [
    ("classification", lambda c: heads.BertForSequenceClassification(c, 3), LABELS, 2),
    ("classification", lambda c: heads.BertForSequenceClassification(c, 1), None, 2),  # STS-B
    ("token_classification", lambda c: heads.BertForTokenClassification(c, 3), LABELS, 2),
    ("span", heads.BertForQuestionAnswering, None, 2),
    ("multiple_choice", heads.BertForMultipleChoice, None, 3),
]


@pytest.mark.parametrize("task, make, labels, rank", CASES)
def test_task_export_loads_in_transformers_with_equal_logits(
    batch, tmp_path, task, make, labels, rank
):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    inputs = [batch[k] for k in ("input_ids", "segment_ids", "input_mask")]
    if rank == 3:  # multiple choice: [B, C, L], here 2 choices per question
        inputs = [np.stack([x, x[::-1]], axis=1) for x in inputs]
    model = make(CONFIG)
    params = random_params(model, inputs)
    report = hf.save_hf(params, CONFIG, tmp_path, task=task, labels=labels)
    architecture = report["architecture"]
    assert architecture == heads_class(task)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [architecture]
    theirs = getattr(transformers, architecture).from_pretrained(tmp_path).eval()
    if labels:
        assert theirs.config.id2label == dict(enumerate(labels))
        assert theirs.config.label2id == {name: i for i, name in enumerate(labels)}
    if task == "classification":
        assert theirs.config.num_labels == (len(labels) if labels else 1)
    ours = model.apply({"params": params}, *inputs)
    expected = hf_logits(theirs, inputs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(expected), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if task in ("token_classification", "span"):  # padded positions are not compared
            real = np.asarray(batch["input_mask"]).astype(bool)
            a, b = a[real], b[real]
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


def heads_class(task):
    return {
        "classification": "BertForSequenceClassification",
        "token_classification": "BertForTokenClassification",
        "span": "BertForQuestionAnswering",
        "multiple_choice": "BertForMultipleChoice",
    }[task]


def test_labels_that_do_not_fit_the_head_are_refused(batch, tmp_path):
    model = heads.BertForTokenClassification(CONFIG, 3)
    inputs = [batch[k] for k in ("input_ids", "segment_ids", "input_mask")]
    params = random_params(model, inputs)
    with pytest.raises(UserError, match="2 labels given for a head with 3 outputs"):
        hf.save_hf(params, CONFIG, tmp_path / "x", task="token_classification", labels=["a", "b"])
    with pytest.raises(UserError, match="needs the pooler"):
        hf.save_hf(params, CONFIG, tmp_path / "y", task="classification")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize("lowercase", [True, False])
def test_sentencepiece_vocab_exports_as_a_tokenizer_transformers_loads(
    tmp_path, hf_state, lowercase
):
    transformers = pytest.importorskip("transformers")
    from bert_jax.text.load import load_tokenizer, train_sentencepiece

    corpus = tmp_path / "corpus.txt"
    sentences = [
        "The Quick brown fox jumps over the lazy dog near Paris.",
        "Rome was not built in a day, said the Old proverb.",
        "Numbers like 12 and 345 appear in text as well.",
        "Café au lait and naïve résumé carry accents.",
    ]
    corpus.write_text("\n".join(sentences * 50) + "\n", encoding="utf-8")
    model_file = train_sentencepiece([str(corpus)], str(tmp_path / "sp"), 60, lowercase=lowercase)
    ours = load_tokenizer(model_file)
    config = CONFIG.replace(vocab_size=ours.vocab_size)
    params, _ = hf.import_entries(
        hf.entries_from_state_dict(resized(hf_state, ours.vocab_size), "state"), config, "state"
    )
    out = tmp_path / "export"
    report = hf.save_hf(params, config, out, vocab=model_file)
    assert {"spiece.model", "tokenizer_config.json"} <= set(report["files"])
    theirs = transformers.AutoTokenizer.from_pretrained(out)
    for a, b in [(sentences[0], sentences[1]), (sentences[3], None), ("Paris PARIS paris", None)]:
        expected = ours.encode_example(a, b)
        got = theirs(a, b) if b is not None else theirs(a)
        assert got["input_ids"] == expected.input_ids, (a, b)
        assert got["token_type_ids"] == expected.segment_ids


def resized(state: dict, vocab_size: int) -> dict:
    """The reference state dict with its vocabulary tables cut to `vocab_size` rows."""
    out = dict(state)
    for name in (
        "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.weight",
        "cls.predictions.bias",
        "cls.predictions.decoder.bias",
    ):
        if name in out:
            out[name] = out[name][:vocab_size]
    return out
