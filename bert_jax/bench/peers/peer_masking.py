"""Peer input-pipeline throughput on CPU: keras-hub's `MaskedLMMaskGenerator` (dynamic BERT
masking: 15% selected, at most P=20, 80% [MASK] / 10% random / 10% kept; [PAD], [CLS], [SEP]
never) mapped over a tf.data stream of pre-tokenized sequences of length S=128 in batches of
B=256. Prints sequences per second. The anchor for the masking stage of `bert-jax bench data`.

Standalone: runs in its own virtual environment, without bert-jax installed:
  pip install tensorflow-cpu==2.21.0 keras-hub tensorflow-text==2.21.1
  python peer_masking.py [sequences]   (default 200,000)
"""

import os
import sys
import time

SEQ, BATCH, PREDICTIONS, VOCAB = 128, 256, 20, 30522
PAD, CLS, SEP, MASK = 0, 101, 102, 103  # bert-base-uncased ids


def main(argv):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras_hub
    import numpy as np
    import tensorflow as tf

    n = int(argv[0]) if argv else 200_000
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, VOCAB, size=(n, SEQ), dtype=np.int32)
    ids[:, 0] = CLS
    ids[:, SEQ // 2] = SEP
    ids[:, -1] = SEP
    masker = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=VOCAB,
        mask_selection_rate=0.15,
        mask_selection_length=PREDICTIONS,
        mask_token_id=MASK,
        unselectable_token_ids=[PAD, CLS, SEP],
        mask_token_rate=0.8,
        random_token_rate=0.1,
    )
    dataset = (
        tf.data.Dataset.from_tensor_slices(ids)
        .batch(BATCH)
        .map(masker, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(4)
    )
    for _ in dataset.take(2):  # warm-up: tracing, thread pools
        pass
    start = time.perf_counter()
    count = 0
    for batch in dataset:
        count += batch["token_ids"].shape[0]
    seconds = time.perf_counter() - start
    print(
        f"keras-hub MaskedLMMaskGenerator: {count / seconds:.0f} seq/s "
        f"(S={SEQ}, B={BATCH}, {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
