"""The loop's view of its input: training batches, the held-out set, and what the model needs
to know about the vocabulary. Real shards go through `bert_jax.data.pipeline` (TensorFlow is
imported there, lazily); `data.synthetic=True` gives random batches of the same layout.
"""

from __future__ import annotations

import dataclasses
import itertools

from bert_jax.data import synthetic as synthetic_data
from bert_jax.errors import UserError
from bert_jax.tasks.base import TaskData

# Not fields of PretrainDataConfig: how the loop finds its data.
LOOP_ONLY_FIELDS = ("vocab", "synthetic", "demo_corpus")
SYNTHETIC_VOCAB_SIZE = 30522


@dataclasses.dataclass
class PretrainData(TaskData):
    """`train(state)` opens the training stream at a saved position (None: the start);
    `evaluation()` gives the held-out batches of one evaluation (the same ones every time)."""

    vocab_size: int
    vocab_fingerprint: str | None
    open_train: object
    held_out: object
    holds_eval: bool
    feed: object = None
    token_text: object = None  # token id -> its text (None for synthetic data), for messages

    def train(self, state):
        return self.open_train(state)

    def stream_state(self, stream) -> dict:
        return stream_state(stream, self.feed)

    @property
    def evaluation_splits(self) -> tuple[str, ...]:
        return ("eval",) if self.holds_eval else ()

    def evaluation(self) -> dict:
        return {"eval": self.held_out()} if self.holds_eval else {}


def _data_config(data):
    from bert_jax.data.pretrain_config import PretrainDataConfig

    fields = {k: v for k, v in data.items() if k not in LOOP_ONLY_FIELDS}
    return PretrainDataConfig(**fields).validate()


def _tokens(data):
    """SpecialTokens (with the vocab size) and the tokenizer of the shards (checked against the
    fingerprint in metadata.json)."""
    from bert_jax.data import shard_reader
    from bert_jax.data.pretrain_config import SpecialTokens
    from bert_jax.text.load import load_tokenizer

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
    return SpecialTokens.from_tokenizer(tokenizer), tokenizer


def _demo_data(data, workdir: str | None, process_count: int, log):
    """`data` with data_dir pointing at the embedded demo corpus, prepared under the workdir
    (`log` gets a line per step)."""
    from bert_jax.data import demo_corpus

    if not workdir or process_count > 1:
        raise UserError("data.demo_corpus needs a --workdir and a single process")
    data = data.copy_and_resolve_references()
    data.data_dir = demo_corpus.prepared_shards(workdir.rstrip("/") + "/demo_data", log=log)
    return data


def open_data(config, eval_batch_size: int, feed, workdir=None, warn=print) -> PretrainData:
    """Reads metadata (and the first held-out batch) only; the training stream opens when the loop
    calls `train(state)`. `feed` (`sharding.HostFeed`) says which rows this process supplies:
    its input streams are those of its batch-shard group, so processes that share a batch shard
    read identical rows. No held-out examples: `has_eval` is False, with one `warn` line."""
    data, train_cfg = config.data, config.train
    if data.demo_corpus and not data.synthetic:
        data = _demo_data(data, workdir, feed.process_count, warn)
    if data.synthetic:
        vocab_size = config.model.vocab_size or SYNTHETIC_VOCAB_SIZE
        shape = (data.max_seq_length, data.max_predictions_per_seq, vocab_size)

        def train(state):
            rows = feed.rows(train_cfg.batch_size)
            stream = synthetic_data.SyntheticBatches(data.seed, train_cfg.batch_size, *shape, rows)
            if state:
                stream.set_state(state)
            return stream

        def evaluation():
            rows = feed.rows(eval_batch_size)
            stream = synthetic_data.SyntheticBatches(data.eval_seed, eval_batch_size, *shape, rows)
            return itertools.islice(stream, train_cfg.eval_batches)

        return PretrainData(vocab_size, None, train, evaluation, train_cfg.eval_batches > 0, feed)

    if not data.data_dir:
        raise UserError(
            "data.data_dir is empty: set --config.data.data_dir=DIR (shards from `bert-jax "
            "prepare`) or --config.data.synthetic=True"
        )
    from bert_jax.data import eval_data, pipeline

    data_cfg = _data_config(data)
    tokens, tokenizer = _tokens(data)
    streams = {"process_index": feed.group, "process_count": feed.groups}

    def train(state):
        return pipeline.train_batches(
            data_cfg, tokens, train_cfg.batch_size, state=state, **streams
        )

    eval_set = None

    def evaluation():
        nonlocal eval_set
        if eval_set is None:
            eval_set = eval_data.eval_batches(data_cfg, tokens, eval_batch_size, **streams)
        return itertools.islice(eval_set, train_cfg.eval_batches)

    has_eval = train_cfg.eval_batches > 0 and _holds_eval_examples(data.data_dir, evaluation, warn)
    return PretrainData(
        tokens.vocab_size,
        tokenizer.fingerprint,
        train,
        evaluation,
        has_eval,
        feed,
        token_text=tokenizer.id_to_token,
    )


def _holds_eval_examples(data_dir: str, evaluation, warn) -> bool:
    """Whether the held-out split yields a batch. Checked before training, so a missing or empty
    split (older `prepare` wrote empty eval files) skips evaluation instead of failing the first
    one: with one warning line."""
    from bert_jax.data import shard_reader

    try:
        shard_reader.list_shards(data_dir, "eval")
    except UserError:
        warn(f"warning: {data_dir} has no eval split; training runs without evaluation")
        return False
    try:
        next(iter(evaluation()))
    except UserError as e:
        if "hold no examples" not in str(e):
            raise
        warn(f"warning: {e}; training runs without evaluation")
        return False
    return True


def stream_state(stream, feed) -> dict:
    """The position to checkpoint: the stream's own, or one per input stream (a collective: every
    process calls it). Processes of one batch-shard group read one stream, so one of them speaks
    for the group and the saved count is the group count the data was read with."""
    if isinstance(stream, synthetic_data.SyntheticBatches):
        return stream.get_state()
    state = stream.state()
    if feed.process_count == 1:
        return state
    from bert_jax.data import pipeline

    gathered = pipeline.gather_process_states(state)
    by_group = {s["process_index"]: s for s in gathered["processes"]}
    return {
        **gathered,
        "process_count": len(by_group),
        "processes": [by_group[g] for g in range(len(by_group))],
    }
