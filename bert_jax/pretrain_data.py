"""The loop's view of its input: training batches, the held-out set, and what the model needs
to know about the vocabulary. Real shards go through `bert_jax.data.pipeline` (TensorFlow is
imported there, lazily); `data.synthetic=True` gives random batches of the same layout.
"""

from __future__ import annotations

import dataclasses
import itertools

from bert_jax import synthetic_data
from bert_jax.errors import UserError

# Not fields of PretrainDataConfig: how the loop finds its data.
LOOP_ONLY_FIELDS = ("vocab", "synthetic", "demo_corpus")
SYNTHETIC_VOCAB_SIZE = 30522


@dataclasses.dataclass
class PretrainData:
    """`train(state)` opens the training stream at a saved position (None: the start);
    `evaluation()` yields the held-out batches of one evaluation (the same ones every time)."""

    vocab_size: int
    vocab_fingerprint: str | None
    train: object
    evaluation: object
    has_eval: bool


def _data_config(data):
    from bert_jax.data.pretrain_config import PretrainDataConfig

    fields = {k: v for k, v in data.items() if k not in LOOP_ONLY_FIELDS}
    return PretrainDataConfig(**fields).validate()


def _tokens(data):
    """SpecialTokens, vocab size and fingerprint of the shards' tokenizer (checked against the
    fingerprint in metadata.json)."""
    from bert_jax.data import shard_reader
    from bert_jax.data.pretrain_config import SpecialTokens
    from bert_jax.data.tokenization import load_tokenizer

    metadata = shard_reader.read_metadata(data.data_dir)
    if metadata is None:
        raise UserError(
            f"data.data_dir {data.data_dir} has no metadata.json (run `bert-jax prepare` first)"
        )
    made_with = metadata.get("tokenizer") or {}
    path = data.vocab or made_with.get("path")
    if not path:
        raise UserError(
            f"{data.data_dir}/metadata.json names no tokenizer; set --config.data.vocab=PATH"
        )
    tokenizer = load_tokenizer(path, lowercase=made_with.get("lowercase"))
    shard_reader.check_tokenizer(data.data_dir, tokenizer)
    return SpecialTokens.from_tokenizer(tokenizer), tokenizer.fingerprint


def _demo_data(data, workdir: str | None, process_count: int):
    """`data` with data_dir pointing at the embedded demo corpus, prepared under the workdir."""
    from bert_jax.data import demo_corpus

    if not workdir or process_count > 1:
        raise UserError("data.demo_corpus needs a --workdir and a single process")
    data = data.copy_and_resolve_references()
    data.data_dir = demo_corpus.prepared_shards(workdir.rstrip("/") + "/demo_data")
    return data


def open_data(
    config, eval_batch_size: int, process_index: int, process_count: int, workdir=None
) -> PretrainData:
    """Reads metadata only; streams open when the loop calls `train(state)`/`evaluation()`."""
    data, train_cfg = config.data, config.train
    if data.demo_corpus and not data.synthetic:
        data = _demo_data(data, workdir, process_count)
    if data.synthetic:
        vocab_size = config.model.vocab_size or SYNTHETIC_VOCAB_SIZE
        shape = (data.max_seq_length, data.max_predictions_per_seq, vocab_size)

        def train(state):
            stream = synthetic_data.SyntheticBatches(
                data.seed, train_cfg.batch_size, *shape, process_index, process_count
            )
            if state:
                stream.set_state(state)
            return stream

        def evaluation():
            stream = synthetic_data.SyntheticBatches(
                data.eval_seed, eval_batch_size, *shape, process_index, process_count
            )
            return itertools.islice(stream, train_cfg.eval_batches)

        return PretrainData(vocab_size, None, train, evaluation, train_cfg.eval_batches > 0)

    if not data.data_dir:
        raise UserError(
            "data.data_dir is empty: set --config.data.data_dir=DIR (shards from `bert-jax "
            "prepare`) or --config.data.synthetic=True"
        )
    from bert_jax.data import pipeline, shard_reader

    data_cfg = _data_config(data)
    tokens, fingerprint = _tokens(data)
    try:
        shard_reader.list_shards(data.data_dir, "eval")
        has_eval = train_cfg.eval_batches > 0
    except UserError:
        has_eval = False

    def train(state):
        return pipeline.train_batches(
            data_cfg,
            tokens,
            train_cfg.batch_size,
            process_index=process_index,
            process_count=process_count,
            state=state,
        )

    eval_set = None

    def evaluation():
        nonlocal eval_set
        if eval_set is None:
            eval_set = pipeline.eval_batches(
                data_cfg,
                tokens,
                eval_batch_size,
                process_index=process_index,
                process_count=process_count,
            )
        return itertools.islice(eval_set, train_cfg.eval_batches)

    return PretrainData(tokens.vocab_size, fingerprint, train, evaluation, has_eval)


def stream_state(stream, process_count: int) -> dict:
    """The position to checkpoint: one process's state, or every process's (a collective)."""
    if isinstance(stream, synthetic_data.SyntheticBatches):
        return stream.get_state()
    state = stream.state()
    if process_count == 1:
        return state
    from bert_jax.data import pipeline

    return pipeline.gather_process_states(state)


def to_global(host_batch: dict, mesh) -> dict:
    """Host rows of every process -> one global batch sharded over the batch axes."""
    from bert_jax.data.pipeline import to_global_batch  # imports no TensorFlow
    from bert_jax.partitioning import BATCH_AXES

    return to_global_batch(host_batch, mesh, BATCH_AXES)
