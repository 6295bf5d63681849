"""init_from: a pretrained encoder into a fine-tuning model. The encoder (and pooler) weights
must arrive unchanged, task heads stay freshly initialised, pretraining heads are dropped, the
optimizer starts fresh; layouts convert; mismatches are refused with names and shapes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from bert_jax.checkpoint import init_from
from bert_jax.checkpoint import manager as checkpointing
from bert_jax.errors import UserError
from bert_jax.model.heads import (
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from bert_jax.trainer.state import TrainState
from tests.checkpoint import fixtures as fx

MLM_NSP = {
    "mlm_norm/bias",
    "mlm_norm/scale",
    "mlm_output_bias",
    "mlm_transform/bias",
    "mlm_transform/kernel",
    "nsp/bias",
    "nsp/kernel",
}


def flat(tree) -> dict[str, np.ndarray]:
    """'a/b/c' -> host array, for every concrete leaf (abstract ones were not loaded)."""
    return {
        "/".join(k): np.asarray(jax.device_get(v))
        for k, v in traverse_util.flatten_dict(nn.unbox(tree)).items()
        if not isinstance(v, jax.ShapeDtypeStruct)
    }


def fresh_params(model, seed=1, on=None):
    """A freshly initialised, unboxed param tree (placed on `on`'s shardings if given)."""
    ids = jnp.zeros((1, fx.LENGTH), jnp.int32)
    params = nn.unbox(jax.jit(model.init)(jax.random.PRNGKey(seed), ids)["params"])
    if on is None:
        return params
    boxed = jax.eval_shape(model.init, jax.random.PRNGKey(seed), ids)["params"]
    shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(boxed), on, fx.RULES)
    return jax.device_put(params, shardings)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A pretraining workdir at step 3 and its params (host copies: the reference)."""
    workdir = tmp_path_factory.mktemp("pretrained")
    state = fx.random_state(fx.pretraining(), seed=2)
    with checkpointing.Checkpointer(workdir, fx.options(), fx.metadata()) as ckpt:
        ckpt.save(3, state, {"batches": 3})
    return workdir, flat(state.params)


def test_classifier_gets_the_encoder_a_fresh_head_and_fresh_optimizer(pretrained):
    workdir, source = pretrained
    model = BertForSequenceClassification(fx.TINY, num_labels=3)
    on = fx.mesh(1, 4, 2)
    fresh = fresh_params(model, seed=1, on=on)
    tx = optax.adamw(1e-3)

    def init_state():
        return TrainState(
            step=jnp.zeros((), jnp.int32), params=fresh, opt_state=tx.init(fresh), rng=None
        )

    ckpt = checkpointing.Checkpointer(workdir.parent / "finetune", fx.options(), fx.metadata())
    state, data, source_line = checkpointing.resume_or_init(
        ckpt, fx.run_config(init_from=str(workdir)), None, init_state
    )
    ckpt.close()
    loaded, before = flat(state.params), flat(fresh)
    encoder = {k for k in loaded if k.startswith("bert/")}
    assert encoder and encoder <= set(source)
    for name in encoder:  # exactly the pretrained values
        np.testing.assert_array_equal(loaded[name], source[name], err_msg=name)
    for name in ("classifier/kernel", "classifier/bias"):  # the task head as initialised
        np.testing.assert_array_equal(loaded[name], before[name])
    assert not np.array_equal(
        loaded["bert/pooler/dense/kernel"], before["bert/pooler/dense/kernel"]
    )
    assert int(state.step) == 0 and data is None
    moments = jax.tree.leaves((state.opt_state[0].mu, state.opt_state[0].nu))
    assert int(state.opt_state[0].count) == 0 and all(not np.any(np.asarray(m)) for m in moments)
    assert source_line.startswith(f"init_from bert-jax {workdir}: loaded {len(encoder)}, new 2")
    kernel = state.params["bert"]["encoder"]["layer_0"]["intermediate"]["kernel"]
    assert kernel.sharding == fresh["bert"]["encoder"]["layer_0"]["intermediate"]["kernel"].sharding


def test_report_names_loaded_new_and_dropped(pretrained):
    workdir, source = pretrained
    model = BertForSequenceClassification(fx.TINY, num_labels=2)
    _, report = init_from.load_encoder(workdir, fx.abstract_params(model))
    assert report.format == "bert-jax" and report.layout_change is None
    assert report.new == ["classifier/bias", "classifier/kernel"]
    assert set(report.dropped) == MLM_NSP
    assert set(report.loaded) == {k for k in source if k.startswith("bert/")}


def test_a_model_without_pooler_drops_it(pretrained):
    workdir, _ = pretrained
    model = BertForTokenClassification(fx.TINY, num_labels=5)
    _, report = init_from.load_encoder(workdir, fx.abstract_params(model))
    assert set(report.dropped) == MLM_NSP | {"bert/pooler/dense/bias", "bert/pooler/dense/kernel"}


@pytest.mark.parametrize("source_scanned", [True, False])
def test_layouts_convert_between_scanned_and_unrolled(tmp_path, source_scanned):
    source_config = fx.TINY.replace(scan_layers=source_scanned)
    state = fx.random_state(BertForPreTraining(source_config), seed=4)
    with checkpointing.Checkpointer(tmp_path, fx.options(), fx.metadata(source_config)) as ckpt:
        ckpt.save(1, state, {})
    target_model = BertForSequenceClassification(
        fx.TINY.replace(scan_layers=not source_scanned), num_labels=2
    )
    params, report = init_from.load_encoder(tmp_path, fx.abstract_params(target_model))
    expected = "scanned -> unrolled" if source_scanned else "unrolled -> scanned"
    assert report.layout_change == expected
    ours, theirs = flat(params), flat(state.params)
    for layer in range(fx.TINY.num_layers):
        name = "attention/query/kernel"
        unrolled = ours if source_scanned else theirs
        scanned = theirs if source_scanned else ours
        np.testing.assert_array_equal(
            unrolled[f"bert/encoder/layer_{layer}/{name}"],
            scanned[f"bert/encoder/layers/{name}"][layer],
        )


def test_another_vocab_size_is_refused_with_names_and_shapes(pretrained):
    workdir, _ = pretrained
    model = BertForSequenceClassification(fx.TINY.replace(vocab_size=80), num_labels=2)
    with pytest.raises(UserError) as error:
        init_from.load_encoder(workdir, fx.abstract_params(model))
    message = str(error.value)
    assert "vocab_size 64 in the source, 80 in this model" in message
    assert "bert/embeddings/word_embeddings/embedding (64, 32) vs (80, 32)" in message


def test_a_deeper_model_is_refused(pretrained):
    workdir, _ = pretrained
    model = BertForSequenceClassification(fx.TINY.replace(num_layers=3), num_labels=2)
    with pytest.raises(UserError, match="lacks 16 encoder weights.*layer_2"):
        init_from.load_encoder(workdir, fx.abstract_params(model))


def test_another_vocabulary_is_refused(pretrained):
    workdir, _ = pretrained
    model = BertForSequenceClassification(fx.TINY, num_labels=2)
    with pytest.raises(UserError, match="another vocabulary"):
        init_from.load_encoder(workdir, fx.abstract_params(model), vocab_fingerprint="vocab-b")


def test_missing_source_is_refused(tmp_path):
    model = BertForSequenceClassification(fx.TINY, num_labels=2)
    with pytest.raises(UserError, match="not found"):
        init_from.load_encoder(tmp_path / "nothing", fx.abstract_params(model))


def test_hugging_face_directory_through_the_same_function(tmp_path):
    """A random transformers BertForPreTraining, saved as HF does; its tensors are the
    reference (HF keeps Linear weights as [out, in]; ours are [in, heads, head_dim])."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    config = transformers.BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
    )
    torch.manual_seed(0)
    hf_model = transformers.BertForPreTraining(config)
    hf_model.save_pretrained(tmp_path)
    weights = {k: v.detach().numpy() for k, v in hf_model.state_dict().items()}
    model = BertForSequenceClassification(fx.TINY, num_labels=2)
    params, report = init_from.load_encoder(tmp_path, fx.abstract_params(model))
    assert report.format == "hf" and report.new == ["classifier/bias", "classifier/kernel"]
    ours = flat(params)
    np.testing.assert_array_equal(
        ours["bert/embeddings/word_embeddings/embedding"],
        weights["bert.embeddings.word_embeddings.weight"],
    )
    np.testing.assert_array_equal(
        ours["bert/encoder/layer_1/attention/query/kernel"],
        weights["bert.encoder.layer.1.attention.self.query.weight"].T.reshape(32, 2, 16),
    )
    np.testing.assert_array_equal(
        ours["bert/pooler/dense/kernel"], weights["bert.pooler.dense.weight"].T
    )
