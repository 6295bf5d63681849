"""What a pretrained source is, before its weights are read: its format, architecture,
vocabulary and (for bert-jax runs) the task it was trained for.

A fine-tuning run takes its architecture and tokenizer from the checkpoint it starts from:
a bert-jax workdir or step directory (the metadata stored with the step, and the vocabulary the
run trained with), a Hugging Face directory (`config.json`, `vocab.txt`, `tokenizer_config.json`)
or a Google TF checkpoint (`bert_config.json` and `vocab.txt` beside it).
"""

from __future__ import annotations

import dataclasses

from bert_jax import paths
from bert_jax.checkpoint import metadata as layout
from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig, from_json_file


@dataclasses.dataclass(frozen=True)
class Source:
    path: str
    format: str  # "bert-jax", "hf" or "tf"
    config: BertConfig
    vocab: str | None  # the vocab.txt / .model file it was trained with, where known
    lowercase: bool | None  # None: the tokenizer decides from the vocabulary
    vocab_fingerprint: str | None  # bert-jax runs record it
    task: str | None  # bert-jax runs: "pretraining", "glue/mrpc", ...


def describe(path: paths.PathLike) -> Source:
    """The Source at `path`; UserError naming what was looked for when it is none."""
    from bert_jax.interop import hf_tokenizer, load, tf

    kind = load.detect_format(path)
    if kind == "bert-jax":
        root, step = layout.resolve(path)
        metadata = layout.read_metadata(root / str(step))
        if "model" not in metadata:
            raise UserError(f"{root / str(step)}: metadata has no model config")
        return Source(
            path=str(path),
            format=kind,
            config=BertConfig.from_dict(metadata["model"]),
            vocab=layout.run_vocab(metadata, root),
            lowercase=None,
            vocab_fingerprint=metadata.get("vocab_fingerprint"),
            task=metadata.get("task", "pretraining"),
        )
    directory = paths.path(path)
    if kind == "tf":
        prefix = tf.find_checkpoint(directory)
        directory = prefix.parent
        config = from_json_file(directory / tf.CONFIG_FILE)
    else:
        config = from_json_file(directory / "config.json")
    vocab = load.vocab_beside(directory)
    return Source(
        path=str(path),
        format=kind,
        config=config,
        vocab=str(vocab) if vocab else None,
        lowercase=hf_tokenizer.casing_beside(directory),
        vocab_fingerprint=None,
        task=None,
    )
