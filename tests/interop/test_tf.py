"""Google TF1 checkpoint import: a checkpoint written the way google-research/bert wrote them
(TF1 Saver, its variable names and layouts, Adam slots beside the weights) from the arrays of a
random `transformers` model imports to exactly the params the Hugging Face path gives."""

import json

import jax
import numpy as np
import pytest

from bert_jax.errors import UserError
from bert_jax.interop import hf, load, tf
from bert_jax.model.config import from_json_dict
from tests.interop.google_checkpoint import (
    GOOGLE_CONFIG,
    google_variables,
    write_google_checkpoint,
    write_tf1_checkpoint,
)
from tests.interop.reference import TINY

tensorflow = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def google_checkpoint(hf_state, tmp_path_factory):
    # With the training state google-research/bert leaves in its checkpoints.
    training_state = {
        "bert/pooler/dense/kernel/adam_m": np.zeros((64, 64), np.float32),
        "bert/pooler/dense/kernel/adam_v": np.zeros((64, 64), np.float32),
        "global_step": np.array(1000, np.int64),
    }
    directory = tmp_path_factory.mktemp("uncased_L-3_H-64_A-4")
    return write_google_checkpoint(directory, hf_state, training_state)


def test_tf_import_equals_hf_import(google_checkpoint, hf_state):
    config, params, report = tf.load_tf(google_checkpoint / "bert_model.ckpt")
    assert config == from_json_dict(TINY)
    reference, _ = hf.import_entries(hf.entries_from_state_dict(hf_state, "ref"), config, "ref")
    assert jax.tree.structure(params) == jax.tree.structure(reference)
    jax.tree.map(np.testing.assert_array_equal, params, reference)
    assert report["missing"] == [] and report["unused"] == []
    assert report["ignored"] == [
        "bert/pooler/dense/kernel/adam_m",
        "bert/pooler/dense/kernel/adam_v",
        "global_step",
    ]


def test_load_pretrained_finds_the_checkpoint_by_directory_or_prefix(google_checkpoint):
    for path in (google_checkpoint, google_checkpoint / "bert_model.ckpt"):
        assert load.detect_format(path) == "tf"
    config, params, report = load.load_pretrained(google_checkpoint, scan_layers=True)
    assert report["format"] == "tf" and config.scan_layers
    assert params["bert"]["encoder"]["layers"]["attention"]["query"]["kernel"].shape == (
        3,
        64,
        4,
        16,
    )


def test_checkpoint_without_bert_config_is_an_error(hf_state, tmp_path):
    write_tf1_checkpoint(tmp_path / "model.ckpt", google_variables(hf_state, 3))
    with pytest.raises(UserError, match="no bert_config.json"):
        tf.load_tf(tmp_path)


def test_tf_shape_mismatch_names_the_variable(google_checkpoint, tmp_path):
    bigger = {**GOOGLE_CONFIG, "intermediate_size": 256}
    for item in google_checkpoint.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    (tmp_path / "bert_config.json").write_text(json.dumps(bigger))
    with pytest.raises(UserError) as e:
        tf.load_tf(tmp_path)
    assert (
        "bert/encoder/layer_0/intermediate/dense/kernel has shape (64, 128), config wants (64, 256)"
        in str(e.value)
    )


def test_fine_tuning_reads_a_google_checkpoints_architecture_and_vocab(google_checkpoint, tmp_path):
    """`finetune --config.init_from=TF_DIR`: the architecture from bert_config.json and the
    vocab.txt beside the checkpoint; the encoder loads, the classifier is new."""
    from bert_jax.checkpoint import init_from, source

    vocab = google_checkpoint / "vocab.txt"
    words = [f"w{i}" for i in range(TINY["vocab_size"] - 5)]
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    described = source.describe(google_checkpoint)
    assert described.format == "tf" and described.vocab == str(vocab)
    assert described.config == from_json_dict(TINY)

    from bert_jax.tasks.classification import SequenceClassificationTask

    task = SequenceClassificationTask("glue/mrpc", described.config, 2, ("f1",), "f1", 16)
    target = task.init_params(jax.random.PRNGKey(0), task.example_batch())
    _, report = init_from.load_encoder(google_checkpoint, target, encoder_only=True)
    assert report.format == "tf" and report.new == ["classifier/bias", "classifier/kernel"]
    assert "mlm_output_bias" in report.dropped and not [
        n for n in report.loaded if not n.startswith("bert/")
    ]
