"""A Google TF1 BERT checkpoint written the way google-research/bert wrote them, from the
arrays of a `transformers` state dict: the reference for the TF import path."""

import json
import pathlib

from tests.interop.reference import TINY


def google_variables(state: dict, num_layers: int) -> dict:
    """The variables of a google-research/bert pretraining checkpoint, written out by hand:
    Dense kernels are [in, out] (PyTorch's transposed), NSP `output_weights` is [2, H]."""
    v = {}
    for table in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        v[f"bert/embeddings/{table}"] = state[f"bert.embeddings.{table}.weight"]

    def dense(tf_name, hf_name):
        v[f"{tf_name}/kernel"] = state[f"{hf_name}.weight"].T
        v[f"{tf_name}/bias"] = state[f"{hf_name}.bias"]

    def norm(tf_name, hf_name):
        v[f"{tf_name}/gamma"] = state[f"{hf_name}.weight"]
        v[f"{tf_name}/beta"] = state[f"{hf_name}.bias"]

    norm("bert/embeddings/LayerNorm", "bert.embeddings.LayerNorm")
    for i in range(num_layers):
        t, h = f"bert/encoder/layer_{i}", f"bert.encoder.layer.{i}"
        for name in ("query", "key", "value"):
            dense(f"{t}/attention/self/{name}", f"{h}.attention.self.{name}")
        dense(f"{t}/attention/output/dense", f"{h}.attention.output.dense")
        norm(f"{t}/attention/output/LayerNorm", f"{h}.attention.output.LayerNorm")
        dense(f"{t}/intermediate/dense", f"{h}.intermediate.dense")
        dense(f"{t}/output/dense", f"{h}.output.dense")
        norm(f"{t}/output/LayerNorm", f"{h}.output.LayerNorm")
    dense("bert/pooler/dense", "bert.pooler.dense")
    dense("cls/predictions/transform/dense", "cls.predictions.transform.dense")
    norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm")
    v["cls/predictions/output_bias"] = state["cls.predictions.bias"]
    v["cls/seq_relationship/output_weights"] = state["cls.seq_relationship.weight"]
    v["cls/seq_relationship/output_bias"] = state["cls.seq_relationship.bias"]
    return v


def write_tf1_checkpoint(prefix, variables: dict) -> None:
    import tensorflow as tf

    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        for name, value in variables.items():
            tf1.get_variable(name, initializer=tf.constant(value))
        saver = tf1.train.Saver()
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            saver.save(session, str(prefix), write_meta_graph=False)


GOOGLE_CONFIG = {  # bert_config.json as released: no layer_norm_eps key
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": TINY["hidden_size"],
    "initializer_range": 0.02,
    "intermediate_size": TINY["intermediate_size"],
    "max_position_embeddings": TINY["max_position_embeddings"],
    "num_attention_heads": TINY["num_attention_heads"],
    "num_hidden_layers": TINY["num_hidden_layers"],
    "type_vocab_size": 2,
    "vocab_size": TINY["vocab_size"],
}


def write_google_checkpoint(directory: pathlib.Path, state: dict, extra: dict | None = None):
    """`directory/bert_model.ckpt.*` + `bert_config.json` for the TINY model in `state`."""
    directory.mkdir(parents=True, exist_ok=True)
    variables = {**google_variables(state, TINY["num_hidden_layers"]), **(extra or {})}
    write_tf1_checkpoint(directory / "bert_model.ckpt", variables)
    (directory / "bert_config.json").write_text(json.dumps(GOOGLE_CONFIG))
    return directory
