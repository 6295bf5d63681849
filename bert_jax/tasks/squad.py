"""SQuAD v1.1 / v2.0 fine-tuning: `build(config, ...)` is the trainer's task for
`--config=configs/squad.py:VERSION`.

Questions come from the official JSON files (`data.data_dir`, or `data.train_file` /
`data.dev_file`; `data.*_articles` slices a file's articles) or from TFDS `squad/VERSION`.
Contexts become windows of `data.max_seq_length` tokens every `data.doc_stride` tokens
(`bert_jax/tasks/squad_windows.py`); a training window without the whole answer targets [CLS].
Each evaluation decodes every dev window's logits into answers in the original context text
(`squad_decode.py`) and scores them as the official script does (`squad_scoring.py`): v1.1
`exact_match`/`f1`, v2.0 `exact`/`f1` and the rest of evaluate-v2.0.py's keys, in percent as
the scripts print them. v2.0 answers "" when the null score beats the best span by more than
`decode.null_threshold`; unset, that threshold is the one that maximises F1 on the dev set (the
script's `best_f1_thresh`, searched over the always-answering predictions), and the metrics are
those of the answers at it. The training file is read when training starts, not before, so
`bert-jax evaluate` needs only the dev file.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.tasks import glue, sentence_batches, squad_data, squad_decode, squad_scoring
from bert_jax.tasks.base import StepPlan, TaskData
from bert_jax.tasks.span import SpanTask, gather_logits
from bert_jax.tasks.squad_windows import Windows, make_windows
from bert_jax.tasks.text_features import Features

VERSIONS = ("v1.1", "v2.0")
TFDS_SPLITS = {"train": "train", "dev": "validation"}
MAIN_METRIC = "f1"


def official_file(version: str, split: str) -> str:
    return f"{split}-{version}.json"


def read_file(data, version: str, split: str) -> squad_data.SquadFile:
    """The articles of `split` ("train" or "dev") that the config selects."""
    articles = data.train_articles if split == "train" else data.dev_articles
    if data.tfds:
        name = f"squad/{version}"
        file = squad_data.read_tfds_squad(name, TFDS_SPLITS[split], data.tfds_data_dir or None)
        return file.select(articles)
    path = data.train_file if split == "train" else data.dev_file
    if not path:
        if not data.data_dir:
            raise UserError(
                f"no SQuAD {split} file: set --config.data.data_dir=DIR (holding "
                f"{official_file(version, split)}), --config.data.{split}_file=PATH or "
                "--config.data.tfds=True"
            )
        path = str(paths.path(data.data_dir) / official_file(version, split))
    return squad_data.read_squad_file(path).select(articles)


@dataclasses.dataclass
class SquadSplit:
    """One split's questions, their windows and the gold data the scoring reads."""

    file: squad_data.SquadFile
    examples: list[squad_data.SquadExample]
    windows: Windows


def window_features(windows: Windows) -> Features:
    """The windows as rows for `sentence_batches` (labels: start and end token)."""
    targets = np.stack([windows.start_positions, windows.end_positions], axis=1)
    return Features(
        input_ids=windows.input_ids,
        segment_ids=windows.segment_ids,
        labels=targets.astype(np.int32),
        indices=np.arange(len(windows), dtype=np.int64),
        truncated=0,
    )


def encode_split(config, tokenizer, version: str, split: str, warn) -> SquadSplit:
    data = config.data
    file = read_file(data, version, split)
    training = split == "train"
    examples, skipped = squad_data.squad_examples(file, training)
    if skipped:
        shown = "; ".join(str(s) for s in skipped[:3])
        warn(f"warning: skipped {len(skipped)} {split} questions of {file.source}: {shown}")
    if not examples:
        raise UserError(f"{file.source}: the selected articles hold no {split} questions")
    windows = make_windows(
        tokenizer,
        examples,
        data.max_seq_length,
        data.doc_stride,
        data.max_query_length,
        training=training,
    )
    warn(
        f"squad {version} {split}: {len(examples)} questions of {len(file.articles)} articles "
        f"-> {len(windows)} windows ({file.source})"
    )
    return SquadSplit(file, examples, windows)


@dataclasses.dataclass
class SquadData(TaskData):
    """Training windows (encoded on first use) and the dev windows, batched as sentences."""

    load_train: object  # () -> SquadSplit
    dev: SquadSplit
    batch_size: int
    eval_batch_size: int
    seed: int
    pad_multiple: int
    max_length: int
    feed: object

    @functools.cached_property
    def train_split(self) -> SquadSplit:
        return self.load_train()

    def train(self, state):
        return sentence_batches.TrainStream(
            window_features(self.train_split.windows),
            self.batch_size,
            self.seed,
            self.pad_multiple,
            self.max_length,
            self.feed,
            state,
        )

    def stream_state(self, stream) -> dict:
        return stream.state()

    @property
    def evaluation_splits(self) -> tuple[str, ...]:
        return ("dev",)

    @functools.cached_property
    def _eval_batches(self) -> dict:
        return {"dev": self.batches(self.dev.windows)}

    def evaluation(self) -> dict:
        return self._eval_batches

    def batches(self, windows: Windows) -> list[dict]:
        """Evaluation batches of any windows (dev, or questions to answer)."""
        return sentence_batches.eval_batches(
            window_features(windows),
            self.eval_batch_size,
            self.pad_multiple,
            self.max_length,
            self.feed,
        )


class SquadFinetune(SpanTask):
    """SQuAD on the trainer: decodes and scores each evaluation, keeps the last predictions."""

    def __init__(self, version: str, config, tokenizer, source, **kwargs):
        super().__init__(**kwargs)
        self.version, self.config, self.tokenizer, self.source = version, config, tokenizer, source
        self.predictions: dict[str, squad_decode.SquadPredictions] = {}

    @property
    def version_2(self) -> bool:
        return self.version == "v2.0"

    def plan(self, config) -> StepPlan:
        return glue.step_plan(config, len(self.data.train_split.windows))

    def decode(self, start, end, split: SquadSplit, threshold: float = 0.0):
        d = self.config.decode
        return squad_decode.decode(
            start,
            end,
            split.windows,
            split.examples,
            version_2=self.version_2,
            n_best=d.n_best,
            max_answer_length=d.max_answer_length,
            null_threshold=threshold,
        )

    def score(self, split: SquadSplit, start, end) -> tuple[dict, squad_decode.SquadPredictions]:
        """The official metrics of one split's logits, and the predictions they score."""
        articles = split.file.articles
        if not self.version_2:
            predictions = self.decode(start, end, split)
            return squad_scoring.score_v1(articles, predictions.answers).metrics, predictions
        threshold = self.config.decode.null_threshold
        predictions = self.decode(start, end, split)
        searched = squad_scoring.score_v2(
            articles, predictions.best_non_null, na_probs=predictions.null_odds
        ).metrics
        if threshold is None:
            threshold = searched["best_f1_thresh"]
        predictions = self.decode(start, end, split, threshold)
        metrics = squad_scoring.score_v2(articles, predictions.answers).metrics
        best = {k: v for k, v in searched.items() if k.startswith("best_")}
        return {**metrics, **best, "null_threshold": float(threshold)}, predictions

    def evaluate(self, split: str, outputs: list[dict[str, np.ndarray]]) -> dict[str, float]:
        data = self.data.dev
        start, end = gather_logits(outputs, len(data.windows))
        metrics, self.predictions[split] = self.score(data, start, end)
        return {k: float(v) for k, v in metrics.items()}

    def write_outputs(self, directory) -> list[str]:
        """predictions.json, nbest.json and (v2.0) null_odds.json of the last evaluation."""
        written = squad_decode.write_prediction_files(self.predictions["dev"], directory)
        return [path.name for path in written]

    def checkpoint_metadata(self) -> dict:
        return {
            **super().checkpoint_metadata(),
            "vocab_fingerprint": self.tokenizer.fingerprint,
            "vocab": paths.absolute(self.tokenizer.path),
            "lowercase": self.tokenizer.lowercase,
            "init_from": paths.absolute(self.source.path) if self.source else None,
        }

    def describe(self) -> str:
        c, d = self.model_config, self.config.data
        return (
            f"finetune {self.name}: {c.num_layers} layers, hidden {c.hidden_size}, windows of "
            f"{d.max_seq_length} tokens, stride {d.doc_stride}"
        )


def build(config, workdir, feed, eval_batch_size: int, warn) -> SquadFinetune:
    """The trainer's task for a SQuAD config: checkpoint, tokenizer, dev windows, and the
    training windows when training starts."""
    version = config.task.removeprefix("squad/")
    if version not in VERSIONS:
        raise UserError(f"unknown SQuAD version {version!r} (one of {', '.join(VERSIONS)})")
    source, architecture, tokenizer = glue.from_checkpoint(config, config.task, warn)
    d = config.data
    data = SquadData(
        load_train=lambda: encode_split(config, tokenizer, version, "train", warn),
        dev=encode_split(config, tokenizer, version, "dev", warn),
        batch_size=config.train.batch_size,
        eval_batch_size=eval_batch_size,
        seed=d.seed,
        pad_multiple=d.pad_multiple,
        max_length=d.max_seq_length,
        feed=feed,
    )
    return SquadFinetune(
        version=version,
        config=config,
        tokenizer=tokenizer,
        source=source,
        name=config.task,
        model_config=architecture,
        max_length=d.max_seq_length,
        main_metric=MAIN_METRIC,
        data=data,
    )
