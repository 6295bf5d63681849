"""Tiny prepared-shard sets for the data tests: documents whose token ids say where each token came
from, written in the `bert-jax prepare` layout with tf.io.TFRecordWriter."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from bert_jax.data.pretrain_config import SpecialTokens

BASE = 1000  # the first text id; ids below are free for special tokens


class Corpus:
    """Documents of random sentence counts and lengths (uniform over the inclusive ranges). Token
    ids are BASE, BASE + 1, ... in reading order, so `decode` maps any id back to its document,
    sentence and position. `set_lengths` fixes chosen sentences' lengths: {(doc, sentence): n}."""

    def __init__(self, num_docs, seed=0, sentences=(1, 40), lengths=(1, 16), set_lengths=None):
        rng = np.random.default_rng(seed)
        self.sentence_lengths = []
        for d in range(num_docs):
            count = int(rng.integers(sentences[0], sentences[1] + 1))
            sizes = rng.integers(lengths[0], lengths[1] + 1, size=count).tolist()
            for (doc, sentence), n in (set_lengths or {}).items():
                if doc == d:
                    sizes[sentence] = n
            self.sentence_lengths.append(sizes)
        flat = [n for sizes in self.sentence_lengths for n in sizes]
        self._doc = np.repeat(
            np.repeat(np.arange(num_docs), [len(s) for s in self.sentence_lengths]), flat
        )
        sentence_index = np.concatenate([np.arange(len(s)) for s in self.sentence_lengths])
        self._sentence = np.repeat(sentence_index, flat)
        self._position = np.concatenate([np.arange(n) for n in flat])
        ids = iter(np.split(BASE + np.arange(sum(flat)), np.cumsum(flat)[:-1]))
        self.docs = [[next(ids) for _ in sizes] for sizes in self.sentence_lengths]
        self.vocab_size = BASE + sum(flat)

    def decode(self, ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(document, sentence, position in sentence) of text token ids."""
        index = np.asarray(ids, np.int64) - BASE
        return self._doc[index], self._sentence[index], self._position[index]

    def special_tokens(self, word_start=None) -> SpecialTokens:
        return SpecialTokens(
            vocab_size=self.vocab_size,
            cls_id=101,
            sep_id=102,
            pad_id=0,
            mask_id=103,
            word_start=word_start,
        )


def write(directory, docs, split="train", num_shards=1, vocab_size=None) -> list[str]:
    """Documents round-robin into `num_shards` files; metadata.json when `vocab_size` is given."""
    import tensorflow as tf

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{split}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(str(p)) for p in paths]
    for i, doc in enumerate(docs):
        feature = {
            "token_ids": tf.train.Feature(
                int64_list=tf.train.Int64List(value=np.concatenate(doc).tolist())
            ),
            "sentence_lengths": tf.train.Feature(
                int64_list=tf.train.Int64List(value=[len(s) for s in doc])
            ),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        writers[i % num_shards].write(example.SerializeToString())
    for w in writers:
        w.close()
    if vocab_size is not None:
        from bert_jax.data import shards

        metadata = {
            "format_version": shards.FORMAT_VERSION,
            "tokenizer": {"vocab_size": vocab_size},
        }
        (directory / "metadata.json").write_text(json.dumps(metadata))
    return [str(p) for p in paths]
