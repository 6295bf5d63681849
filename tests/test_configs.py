"""Every config argument loads and builds its model and sharded state abstractly
(`large` too: jax.eval_shape costs no memory); config.data mirrors PretrainDataConfig and
config.model every BertConfig field, so any architecture is a few flags away."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from bert_jax import sharding
from bert_jax.cli import config_args
from bert_jax.data.pretrain_config import PretrainDataConfig
from bert_jax.model.bert import BertModel
from bert_jax.model.config import BertConfig
from bert_jax.tasks import pretraining
from bert_jax.tasks.pretraining_data import LOOP_ONLY_FIELDS
from bert_jax.trainer import optim
from bert_jax.trainer import state as train_state
from configs import pretrain
from tests.conftest import REPO

ARGS = [
    "tiny",
    "mini",
    "small",
    "medium",
    "base",
    "large",
    "L-4_H-256",
    "base,runlocal",
    "quickstart",
]


@pytest.mark.parametrize("arg", ARGS)
def test_config_builds_its_sharded_state_abstractly(arg):
    config = pretrain.get_config(arg)
    model_config = pretraining.bert_config(
        config.model, 30522, config.data.max_seq_length, config.data.max_predictions_per_seq
    )
    tx, _ = optim.make_optimizer(config.optimizer, config.train.num_steps)
    mesh = sharding.make_mesh(config.mesh)
    shape = (config.data.max_seq_length, config.data.max_predictions_per_seq)
    init = train_state.init_fn(pretraining.PretrainingTask(model_config, *shape), tx, config.seed)
    planned = train_state.plan(init, mesh)
    assert planned.abstract.params["bert"]["embeddings"]["word_embeddings"]["embedding"].shape == (
        30522,
        model_config.hidden_size,
    )
    sharding.check_batch(config.train.batch_size, config.train.accum_steps, mesh)
    assert jax.tree.leaves(planned.abstract)[0].sharding is not None


def test_config_data_mirrors_the_pipeline_and_defaults_are_the_original_recipe():
    config = pretrain.get_config("base")
    fields = {f.name for f in dataclasses.fields(PretrainDataConfig)}
    assert set(config.data.keys()) - set(LOOP_ONLY_FIELDS) == fields
    assert config.optimizer.name == "bert_adamw" and config.optimizer.eps == 1e-6
    assert (config.train.batch_size, config.train.num_steps) == (256, 1_000_000)
    with pytest.raises(ValueError, match="unknown size"):
        pretrain.get_config("huge")


def test_config_model_sets_every_bert_config_field():
    config = pretrain.get_config("base")
    fields = {f.name for f in dataclasses.fields(BertConfig)}
    assert set(config.model.keys()) - {"size"} == fields


def test_any_architecture_from_flags_minilm_shape():
    """all-MiniLM-L6-v2's encoder (hidden 384, 6 layers, 12 heads, MLP 1536) on the base preset:
    its BertModel has exactly Hugging Face's 22,713,216 parameters."""
    flags = ["--config.model.hidden_size=384", "--config.model.num_layers=6",
             "--config.model.num_heads=12", "--config.model.intermediate_size=1536"]  # fmt: skip
    config = config_args.load(f"{REPO}/configs/pretrain.py:base", flags)
    c = pretraining.bert_config(config.model, 30522, 128, 20)
    assert (c.hidden_size, c.num_layers, c.num_heads, c.intermediate_size) == (384, 6, 12, 1536)
    ids = jnp.zeros((1, 8), jnp.int32)
    shapes = jax.eval_shape(lambda: BertModel(c).init(jax.random.PRNGKey(0), ids, ids, ids))
    assert sum(x.size for x in jax.tree.leaves(shapes)) == 22_713_216


FINETUNE_CONFIGS = [
    ("glue.py", "mrpc", "classification"),
    ("glue.py", "mnli", "classification"),
    ("squad.py", "v1.1", "span"),
    ("squad.py", "v2.0", "span"),
    ("ner.py", "conll2003", "token_classification"),
    ("swag.py", "", "multiple_choice"),
]


@pytest.mark.parametrize(("file", "arg", "kind"), FINETUNE_CONFIGS)
def test_finetune_config_parses_locked_and_builds_its_model_abstractly(file, arg, kind):
    """Each fine-tuning config goes through the CLI's parser (locked: a typo fails), names a
    task whose family module builds it, and its head model builds on the base preset."""
    from bert_jax.model.heads import TASK_MODELS
    from bert_jax.tasks import glue, registry

    spec = f"{REPO}/configs/{file}" + (f":{arg}" if arg else "")
    config = config_args.load(spec, ["--config.model.size=base"])
    assert hasattr(registry.module(config.task), "build")
    with pytest.raises(AttributeError):
        config.data.no_such_field = 1
    model_config = glue.model_config(config.model, None)
    assert model_config.hidden_size == 768
    model_class = TASK_MODELS[kind]
    extra = {"num_labels": 3} if kind in ("classification", "token_classification") else {}
    model = model_class(model_config, **extra)
    shape = (1, 4, 16) if kind == "multiple_choice" else (1, 16)
    ids = jnp.zeros(shape, jnp.int32)
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), ids, ids, ids))
    assert "bert" in params["params"]
    assert 0.0 < config.optimizer.learning_rate <= 5e-5 and config.optimizer.warmup_fraction == 0.1


def test_squad_configs_follow_the_paper():
    """BERT paper 4.2-4.3: v1.1 3 epochs at batch 32, v2.0 2 epochs at batch 48, lr 5e-5;
    windows 384 / stride 128 / query 64, n-best 20, answers up to 30 tokens."""
    from configs import squad

    for version, (epochs, batch) in {"v1.1": (3, 32), "v2.0": (2, 48)}.items():
        c = squad.get_config(version)
        assert (c.train.num_epochs, c.train.batch_size, c.optimizer.learning_rate) == (
            epochs,
            batch,
            5e-5,
        )
        assert (c.data.max_seq_length, c.data.doc_stride, c.data.max_query_length) == (384, 128, 64)
        assert (c.decode.n_best, c.decode.max_answer_length) == (20, 30)
    with pytest.raises(ValueError, match="unknown version"):
        squad.get_config("v3")
