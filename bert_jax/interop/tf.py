"""Google's TF1 BERT checkpoints (`bert_model.ckpt.*` + `bert_config.json`, google-research/bert).

The variable names mirror Hugging Face's module names (`bert/encoder/layer_0/attention/self/
query/kernel` ~ `bert.encoder.layer.0.attention.self.query.weight`), so each variable is renamed
to its Hugging Face spelling and layout (kernels transposed to [out, in]) and the Hugging Face
importer does the rest. TensorFlow is imported here only, when such a checkpoint is read; a
progress bar counts the variables read (`bert_jax/progress.py`).

Finding the checkpoint and reading bert_config.json go through `bert_jax.paths` (gcsfs for
gs://); the variables themselves are read by TensorFlow's checkpoint reader, which reaches gs://
through TensorFlow's own filesystem: that read uses TensorFlow's credentials and cannot be
pointed at a storage emulator.
"""

from __future__ import annotations

import os
import re

import numpy as np

from bert_jax import paths, progress
from bert_jax.errors import UserError
from bert_jax.interop import hf
from bert_jax.model.config import BertConfig, from_json_file

CONFIG_FILE = "bert_config.json"
# Training state stored beside the weights: Adam slots, step counters, loss-scale state.
_TRAINING_STATE = re.compile(
    r"(/adam_[mv]$|/Adam(_1)?$|^global_step$|^good_steps$|^bad_steps$|^loss_scale$)"
)
# Names that do not follow the module/variable pattern.
_SPECIAL = {
    "cls/predictions/output_bias": "cls.predictions.bias",
    "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",  # already [2, H]
    "cls/seq_relationship/output_bias": "cls.seq_relationship.bias",
}


def hf_name(name: str) -> tuple[str, bool]:
    """(Hugging Face name, whether the array must be transposed) for a TF variable name."""
    if name in _SPECIAL:
        return _SPECIAL[name], False
    dotted = re.sub(r"layer_(\d+)", r"layer.\1", name.replace("/", "."))
    if re.search(r"\.(word|position|token_type)_embeddings$", dotted):
        return dotted + ".weight", False
    if dotted.endswith(".kernel"):
        return dotted[: -len("kernel")] + "weight", True
    # LayerNorm gamma/beta become weight/bias in hf.canonical_name.
    return dotted, False


def find_checkpoint(path: paths.Path) -> paths.Path | None:
    """The checkpoint prefix for `path`: a prefix itself (`.../bert_model.ckpt`), or a
    directory holding exactly one `*.index` (or a TF `checkpoint` file naming the latest)."""
    path = paths.path(path)
    if paths.path(f"{path}.index").is_file():
        return path
    if not path.is_dir():
        return None
    indexes = sorted(path.glob("*.index"))
    if len(indexes) == 1:
        return indexes[0].parent / indexes[0].name.removesuffix(".index")
    state = path / "checkpoint"
    if state.is_file():
        match = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(), re.M)
        if match:
            prefix = path / match.group(1)
            if paths.path(f"{prefix}.index").is_file():
                return prefix
    if len(indexes) > 1:
        raise UserError(
            f"{path} holds {len(indexes)} TF checkpoints "
            f"({', '.join(i.stem for i in indexes[:3])}); pass one prefix"
        )
    return None


def read_variables(prefix: paths.Path) -> dict[str, np.ndarray]:
    # Also read inside a fine-tuning run whose JAX owns the accelerators: TensorFlow must not.
    from bert_jax.data.shard_reader import tensorflow

    tf = tensorflow()

    try:
        reader = tf.train.load_checkpoint(os.fspath(prefix))
    except Exception as e:  # noqa: BLE001 -- TF raises assorted errors for a bad checkpoint
        raise UserError(f"{prefix}: not a readable TF checkpoint ({type(e).__name__})") from None
    names = list(reader.get_variable_to_shape_map())
    bar = progress.bar(names, desc=f"read {prefix.name}", unit="var")
    return {name: reader.get_tensor(name) for name in bar}


def load_tf(path: paths.PathLike) -> tuple[BertConfig, dict, dict]:
    """(config, unscanned params, report) from a Google TF1 BERT checkpoint."""
    path = paths.path(path)
    prefix = find_checkpoint(path)
    if prefix is None:
        raise UserError(f"{path}: no TF checkpoint (*.index) found")
    config_path = prefix.parent / CONFIG_FILE
    if not config_path.is_file():
        raise UserError(f"{prefix}: checkpoint found but no {CONFIG_FILE} beside it")
    config = from_json_file(config_path)
    variables = read_variables(prefix)
    entries: hf.Entries = {}
    ignored, transposed = [], set()
    for name, array in variables.items():
        if _TRAINING_STATE.search(name):
            ignored.append(name)
            continue
        renamed, transpose = hf_name(name)
        array = np.asarray(array)
        if transpose:
            transposed.add(name)
        entries[hf.canonical_name(renamed)] = (name, array.T if transpose else array)
    source = os.fspath(prefix)
    params, report = hf.import_entries(entries, config, source, ignored, transposed)
    return config, params, {"format": "tf", **report}
