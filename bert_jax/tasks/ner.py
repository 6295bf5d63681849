"""CoNLL-2003 NER fine-tuning: `build(config, ...)` is the trainer's task for
`--config=configs/ner.py:conll2003`.

Training reads eng.train, evaluation eng.testa (the dev set, which picks the best checkpoint)
and eng.testb, from the original files or TFDS (`bert_jax/tasks/conll.py`). The checkpoint, the
tokenizer and the step plan are found as for GLUE (`bert_jax/tasks/glue.py`). The label list is
the training set's tags, sorted.

Every word is tokenized on its own (all words of a split in one `encode_batch` call). A sentence
with more pieces than a row holds is never cut: it becomes several consecutive rows, split at word
boundaries, whose predictions are joined back on the sentence. A single word longer than a row
keeps its first pieces (its label sits on the first). Batches are padded as GLUE's
(`sentence_batches`), with per-token `labels` and `label_weights` added from the rows.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np

from bert_jax import paths
from bert_jax.errors import UserError
from bert_jax.tasks import conll, glue, sentence_batches
from bert_jax.tasks.base import TaskData
from bert_jax.tasks.token_classification import TokenClassificationTask, WordFeatures
from bert_jax.text.tokenizer import Tokenizer

TASK = "ner/conll2003"
TRAIN_SPLIT, EVAL_SPLITS = "train", ("testa", "testb")


def encode_words(
    tokenizer: Tokenizer,
    words: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]],
    labels: Sequence[str],
    max_length: int,
) -> WordFeatures:
    """The rows of sentences given as words (and their tags; a tag missing from `labels`
    weighs 0 in the loss). See `WordFeatures`."""
    budget = max_length - 2  # [CLS] and [SEP]
    if budget < 1:
        raise UserError(f"max_length {max_length} is too small: [CLS] and [SEP] need 2 positions")
    if len(words) != len(tags) or any(len(w) != len(t) for w, t in zip(words, tags, strict=True)):
        raise ValueError("encode_words needs one tag per word of every sentence")
    flat_words = [w for sentence in words for w in sentence]
    pieces = tokenizer.encode_batch(flat_words)
    counts = np.fromiter(map(len, pieces), np.int64, len(pieces))
    ids = np.fromiter(itertools.chain.from_iterable(pieces), np.int32, int(counts.sum()))
    # A word longer than a row keeps its first `budget` pieces (its label is on the first).
    kept = np.minimum(counts, budget)
    if (counts > budget).any():
        within = np.arange(len(ids)) - np.repeat(np.cumsum(counts) - counts, counts)
        ids = ids[within < np.repeat(kept, counts)]
    start = np.concatenate([[0], np.cumsum(kept)])  # first piece of each word in `ids`
    index = {label: i for i, label in enumerate(labels)}
    flat_labels = np.fromiter(
        (index.get(t, -1) for sentence in tags for t in sentence), np.int32, len(flat_words)
    )
    rows: list[tuple] = []  # (input ids, positions, words, label ids) per row
    sentence_of: list[int] = []
    split, offset = 0, 0
    for s, sentence in enumerate(words):
        bounds = _row_bounds(kept[offset : offset + len(sentence)], budget)
        split += len(bounds) > 1
        for a, b in bounds:
            lo, hi = offset + a, offset + b
            has_piece = kept[lo:hi] > 0
            ids_row = [[tokenizer.cls_id], ids[start[lo] : start[hi]], [tokenizer.sep_id]]
            rows.append(
                (
                    np.concatenate(ids_row).astype(np.int32),
                    (1 + start[lo:hi] - start[lo])[has_piece].astype(np.int32),
                    np.arange(a, b, dtype=np.int64)[has_piece],
                    flat_labels[lo:hi][has_piece],
                )
            )
            sentence_of.append(s)
        offset += len(sentence)
    return WordFeatures(
        input_ids=[r[0] for r in rows],
        segment_ids=[np.zeros(len(r[0]), np.int32) for r in rows],
        labels=np.zeros(len(rows), np.int32),
        positions=[r[1] for r in rows],
        words=[r[2] for r in rows],
        label_ids=[r[3] for r in rows],
        sentence=np.asarray(sentence_of, np.int64),
        tags=[tuple(t) for t in tags],
        split_sentences=split,
        cut_words=int((counts > budget).sum()),
        empty_words=int((counts == 0).sum()),
    )


def _row_bounds(lengths: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """[a, b) word ranges of a sentence's rows: all its words when they fit, else greedy
    consecutive runs of at most `budget` pieces."""
    if lengths.sum() <= budget:
        return [(0, len(lengths))]
    bounds, a, used = [], 0, 0
    for w, n in enumerate(lengths.tolist()):
        if used + n > budget:
            bounds.append((a, w))
            a, used = w, 0
        used += n
    bounds.append((a, len(lengths)))
    return bounds


def with_token_labels(batch: dict, features: WordFeatures) -> dict:
    """`batch` (host rows of `sentence_batches.make_batch`) with `labels` [B, L]: each word's
    label on its first piece, and `label_weights` [B, L]: 1 there, 0 elsewhere."""
    rows, shape = batch["rows"], batch["input_ids"].shape
    labels = np.zeros(shape, np.int32)
    weights = np.zeros(shape, np.float32)
    for i, row in enumerate(rows):
        if row < 0:
            continue
        known = features.label_ids[row] >= 0
        positions = features.positions[row][known]
        labels[i, positions] = features.label_ids[row][known]
        weights[i, positions] = 1.0
    return {**batch, "labels": labels, "label_weights": weights}


class WordTrainStream(sentence_batches.TrainStream):
    """GLUE's resumable epoch/batch stream over word features, with token labels."""

    def __next__(self) -> dict:
        return with_token_labels(super().__next__(), self.features)


@dataclasses.dataclass
class WordData(TaskData):
    """Encoded splits of a tagging task and how to batch them."""

    train_features: WordFeatures
    eval_features: dict[str, WordFeatures]
    batch_size: int
    eval_batch_size: int
    seed: int
    pad_multiple: int
    max_length: int
    feed: object
    _eval_batches: dict | None = None

    def train(self, state):
        return WordTrainStream(
            self.train_features,
            self.batch_size,
            self.seed,
            self.pad_multiple,
            self.max_length,
            self.feed,
            state,
        )

    def stream_state(self, stream) -> dict:
        # Every process draws the same permutation: its own position speaks for all.
        return stream.state()

    @property
    def evaluation_splits(self) -> tuple[str, ...]:
        return tuple(self.eval_features)

    def evaluation(self) -> dict:
        if self._eval_batches is None:
            self._eval_batches = {
                split: self.batches(features) for split, features in self.eval_features.items()
            }
        return self._eval_batches

    def batches(self, features: WordFeatures) -> list[dict]:
        """Evaluation batches of any encoded split, longest rows first."""
        plain = sentence_batches.eval_batches(
            features, self.eval_batch_size, self.pad_multiple, self.max_length, self.feed
        )
        return [with_token_labels(batch, features) for batch in plain]


def build(config, workdir, feed, eval_batch_size: int, warn) -> NerFinetune:
    """The trainer's task for a CoNLL-2003 config: checkpoint, tokenizer, data, step plan."""
    if config.task != TASK:
        raise UserError(f"configs for bert_jax.tasks.ner name task {TASK!r}, not {config.task!r}")
    source, architecture, tokenizer = glue.from_checkpoint(config, TASK, warn)
    data_cfg = config.data
    sentences = {s: conll.read_split(data_cfg, s) for s in (TRAIN_SPLIT, *EVAL_SPLITS)}
    labels = tuple(sorted({t for s in sentences[TRAIN_SPLIT] for t in s.tags}))
    features = {}
    for split, split_sentences in sentences.items():
        features[split] = encode_words(
            tokenizer,
            [s.words for s in split_sentences],
            [s.tags for s in split_sentences],
            labels,
            data_cfg.max_seq_length,
        )
        _report(split, split_sentences, features[split], labels, data_cfg.max_seq_length, warn)
    train = features[TRAIN_SPLIT]
    data = WordData(
        train_features=train,
        eval_features={split: features[split] for split in EVAL_SPLITS},
        batch_size=config.train.batch_size,
        eval_batch_size=eval_batch_size,
        seed=data_cfg.seed,
        pad_multiple=data_cfg.pad_multiple,
        max_length=data_cfg.max_seq_length,
        feed=feed,
    )
    return NerFinetune(
        sentences=sentences,
        scheme=data_cfg.scheme,
        tokenizer=tokenizer,
        source=source,
        name=TASK,
        model_config=architecture,
        labels=labels,
        main_metric=f"{EVAL_SPLITS[0]}/f1",
        max_length=data_cfg.max_seq_length,
        data=data,
        steps=glue.step_plan(config, len(train)),
    )


def _report(split, sentences, features: WordFeatures, labels, max_length: int, warn) -> None:
    """One line per split for what did not map one to one: split sentences, cut words, words
    with no piece, tags the training set lacks."""
    notes = []
    if features.split_sentences:
        notes.append(
            f"{features.split_sentences} sentences longer than {max_length - 2} pieces split "
            f"into consecutive rows ({len(features)} rows for {len(sentences)} sentences)"
        )
    if features.cut_words:
        notes.append(f"{features.cut_words} words longer than a row keep their first pieces")
    if features.empty_words:
        notes.append(f"{features.empty_words} words have no piece (predicted O)")
    unknown = sorted({t for s in sentences for t in s.tags} - set(labels))
    if unknown:
        notes.append(f"tags absent from training, never predicted: {', '.join(unknown)}")
    if notes:
        warn(f"note: CoNLL-2003 {split}: " + "; ".join(notes))


class NerFinetune(TokenClassificationTask):
    """CoNLL-2003 on the trainer; keeps what writing its outputs needs."""

    def __init__(self, sentences, scheme: str, tokenizer, source, **kwargs):
        super().__init__(**kwargs)
        self.sentences, self.scheme = sentences, scheme
        self.tokenizer, self.source = tokenizer, source

    def checkpoint_metadata(self) -> dict:
        return {
            **super().checkpoint_metadata(),
            "scheme": self.scheme,
            "vocab_fingerprint": self.tokenizer.fingerprint,
            "vocab": paths.absolute(self.tokenizer.path),
            "lowercase": self.tokenizer.lowercase,
            "init_from": paths.absolute(self.source.path) if self.source else None,
        }


def conll_predictions(sentences: Sequence[conll.Sentence], predicted_tags) -> str:
    """`word gold predicted` per word, a blank line after each sentence, and a
    `-DOCSTART- O O` line (then a blank line) where the input started a document: the three
    columns `conlleval` reads (it requires one column count on every line)."""
    if len(sentences) != len(predicted_tags):
        raise UserError(f"{len(predicted_tags)} predicted sentences for {len(sentences)}")
    lines = []
    for sentence, predicted in zip(sentences, predicted_tags, strict=True):
        if len(predicted) != len(sentence.words):
            raise UserError(
                f"{sentence.file} line {sentence.line}: {len(predicted)} predicted tags for "
                f"{len(sentence.words)} words"
            )
        if sentence.starts_document:
            lines += [f"{conll.DOCSTART} O O", ""]
        lines += [
            f"{w} {g} {p}" for w, g, p in zip(sentence.words, sentence.tags, predicted, strict=True)
        ]
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")
