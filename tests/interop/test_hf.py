"""Hugging Face import/export against `transformers` itself: a random BertForPreTraining
converted into ours gives the same hidden states and logits (scanned and unrolled), the real
all-MiniLM-L6-v2 gives the same hidden states, and our export loads into transformers with no
missing or unexpected weights."""

import json
import pathlib

import jax
import numpy as np
import pytest
from safetensors.numpy import save_file

from bert_jax.errors import UserError
from bert_jax.interop import hf, layout
from bert_jax.model.bert import BertModel
from bert_jax.model.heads import BertForPreTraining
from tests.interop.reference import (
    TINY,
    hf_outputs,
    max_diff,
    minilm_dir,
    our_outputs,
    tiny_config,
)

TOLERANCE = 1e-5


def imported(hf_state):
    config = tiny_config()
    params, report = hf.import_entries(hf.entries_from_state_dict(hf_state, "ref"), config, "ref")
    return config, params, report


def shapes(tree):
    return jax.tree.map(lambda x: tuple(x.shape), tree)


def test_import_fills_exactly_the_model_tree(hf_state):
    config, params, report = imported(hf_state)
    abstract = jax.eval_shape(
        lambda: BertForPreTraining(config).init(jax.random.PRNGKey(0), np.zeros((1, 4), np.int32))
    )["params"]
    import flax.linen as nn

    assert shapes(params) == shapes(nn.unbox(abstract))
    assert report["missing"] == [] and report["unused"] == []
    # The tied decoder copies are recognised, not loaded twice and not left unused.
    assert set(report["ignored"]) == {
        "cls.predictions.decoder.weight",
        "cls.predictions.decoder.bias",
    }
    assert all(x.dtype == np.float32 for x in jax.tree.leaves(params))


@pytest.mark.parametrize("scanned", [False, True], ids=["unrolled", "scanned"])
def test_parity_with_transformers(hf_model, hf_state, batch, scanned):
    config, params, _ = imported(hf_state)
    if scanned:
        config, params = config.replace(scan_layers=True), layout.scan_layers(params)
    diffs = max_diff(
        our_outputs(config, params, batch), hf_outputs(hf_model, batch), batch["input_mask"]
    )
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_naming_variants_load_the_same_weights(hf_state, tmp_path):
    """No `bert.` prefix, legacy LayerNorm gamma/beta, no tied decoder copies, .bin file."""
    torch = pytest.importorskip("torch")
    _, reference, _ = imported(hf_state)
    legacy = {}
    for name, array in hf_state.items():
        if name.startswith("cls.predictions.decoder"):
            continue
        name = name.removeprefix("bert.")
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        )
        legacy[name] = array
    legacy["embeddings.position_ids"] = np.arange(64)[None]  # an old registered buffer
    directory = tmp_path / "legacy"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(TINY))
    torch.save({k: torch.from_numpy(v) for k, v in legacy.items()}, directory / "pytorch_model.bin")
    _, params, report = hf.load_hf(directory)
    assert report["missing"] == [] and report["unused"] == []
    assert report["ignored"] == ["embeddings.position_ids"]
    jax.tree.map(np.testing.assert_array_equal, params, reference)


def test_encoder_only_checkpoint_reports_missing_heads(hf_model, tmp_path):
    hf_model.bert.save_pretrained(tmp_path)  # BertModel layout: no `bert.` prefix, no cls.*
    config, params, report = hf.load_hf(tmp_path)
    assert sorted(report["missing"]) == sorted(
        [
            "mlm_transform/kernel",
            "mlm_transform/bias",
            "mlm_norm/scale",
            "mlm_norm/bias",
            "mlm_output_bias",
            "nsp/kernel",
            "nsp/bias",
        ]
    )
    assert set(params) == {"bert"} and "pooler" in params["bert"]


def test_unused_weights_are_reported(hf_state, tmp_path):
    state = {**hf_state, "classifier.weight": np.zeros((3, 64), np.float32)}
    state = {k: v for k, v in state.items() if not k.startswith("cls.seq_relationship")}
    _, report = hf.import_entries(hf.entries_from_state_dict(state, "ref"), tiny_config(), "ref")
    assert report["unused"] == ["classifier.weight"]
    assert report["missing"] == ["nsp/kernel", "nsp/bias"]


def test_export_loads_into_transformers_without_missing_weights(
    hf_model, hf_state, batch, tmp_path
):
    transformers = pytest.importorskip("transformers")
    config, params, _ = imported(hf_state)
    scanned = layout.scan_layers(params)
    hf.save_hf(scanned, config.replace(scan_layers=True), tmp_path)
    loaded, info = transformers.BertForPreTraining.from_pretrained(
        tmp_path, output_loading_info=True, attn_implementation="eager"
    )
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert info["mismatched_keys"] == []
    diffs = max_diff(
        hf_outputs(loaded.eval(), batch), hf_outputs(hf_model, batch), batch["input_mask"]
    )
    assert max(diffs.values()) == 0.0, diffs


def test_export_of_encoder_only_params_is_a_bert_model(hf_model, hf_state, tmp_path):
    transformers = pytest.importorskip("transformers")
    config, params, _ = imported(hf_state)
    result = hf.save_hf({"bert": params["bert"]}, config, tmp_path)
    assert result["architecture"] == "BertModel"
    _, info = transformers.BertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


def write_hf_dir(directory: pathlib.Path, state, config=TINY):
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory


def test_shape_mismatch_names_the_weight_and_both_shapes(hf_state, tmp_path):
    directory = write_hf_dir(tmp_path / "m", hf_state, {**TINY, "hidden_size": 128})
    with pytest.raises(UserError) as e:
        hf.load_hf(directory)
    assert (
        "bert.embeddings.word_embeddings.weight has shape (1000, 64), config wants (1000, 128)"
        in (str(e.value))
    )


def test_more_layers_in_the_checkpoint_than_the_config_is_an_error(hf_state, tmp_path):
    directory = write_hf_dir(tmp_path / "m", hf_state, {**TINY, "num_hidden_layers": 2})
    with pytest.raises(UserError, match="not in the config"):
        hf.load_hf(directory)


def test_untied_decoder_is_an_error(hf_state):
    state = dict(hf_state)
    state["cls.predictions.decoder.weight"] = state["cls.predictions.decoder.weight"] + 1.0
    with pytest.raises(UserError, match="not tied"):
        hf.import_entries(hf.entries_from_state_dict(state, "ref"), tiny_config(), "ref")


def test_config_without_weights_is_an_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    with pytest.raises(UserError, match="config.json is there but no weights"):
        hf.load_hf(tmp_path)


def test_vocab_size_must_match_the_embedding_table(hf_state, tmp_path):
    config, params, _ = imported(hf_state)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"tok{i}\n" for i in range(999)))
    with pytest.raises(UserError, match="has 999 entries, the embedding table has 1000 rows"):
        hf.save_hf(params, config, tmp_path / "out", vocab=vocab)


def test_bfloat16_safetensors_are_read(hf_state, tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as save_torch

    (tmp_path / "config.json").write_text(json.dumps(TINY))
    save_torch(
        {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in hf_state.items()},
        str(tmp_path / "model.safetensors"),
        metadata={"format": "pt"},
    )
    _, params, _ = hf.load_hf(tmp_path)
    table = params["bert"]["embeddings"]["word_embeddings"]["embedding"]
    expected = hf_state["bert.embeddings.word_embeddings.weight"].astype(ml_dtypes.bfloat16)
    assert table.dtype == np.float32
    np.testing.assert_array_equal(table, expected.astype(np.float32))


# ----------------------------------------------------------------------------- real weights

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar.",
    "Résumé: naïve café owners in São Paulo, 1999!",
    "Hi",
]


def test_all_minilm_matches_transformers():
    minilm = minilm_dir()
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.BertTokenizer(str(minilm / "vocab.txt"), do_lower_case=True)
    enc = tokenizer(SENTENCES, padding=True, return_tensors="np")
    reference = transformers.BertModel.from_pretrained(minilm, attn_implementation="eager")
    with torch.no_grad():
        expected = reference.eval()(
            **{k: torch.from_numpy(v).long() for k, v in enc.items()}
        ).last_hidden_state.numpy()

    config, params, report = hf.load_hf(minilm)
    assert report["unused"] == [] and "bert/pooler/dense/kernel" in report["loaded"]
    assert {p.split("/")[0] for p in report["missing"]} == {
        "mlm_transform",
        "mlm_norm",
        "mlm_output_bias",
        "nsp",
    }
    seq, _ = BertModel(config).apply(
        {"params": params["bert"]}, enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
    )
    real = enc["attention_mask"].astype(bool)
    assert real.sum() < real.size  # the batch really has padding
    assert np.abs(np.asarray(seq)[real] - expected[real]).max() <= 1e-4
