"""Fixtures of the interop tests: a small random `transformers` BertForPreTraining, its state
dict, and a padded two-segment batch."""

import os

os.environ.setdefault("USE_TF", "0")  # keep transformers from importing TensorFlow
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.interop.reference import TINY, random_hf_model  # noqa: E402


@pytest.fixture(scope="session")
def hf_model():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return random_hf_model()


@pytest.fixture(scope="session")
def hf_state(hf_model):
    """The model's state dict as numpy, named as transformers names it (tied copies included)."""
    return {k: v.detach().numpy().copy() for k, v in hf_model.state_dict().items()}


@pytest.fixture(scope="session")
def batch():
    """3 rows of length 12, 7 and 4 (the rest padding), segments A then B in each."""
    rng = np.random.default_rng(0)
    lengths = np.array([12, 7, 4])
    ids = rng.integers(5, TINY["vocab_size"], size=(3, 12)).astype(np.int32)
    mask = (np.arange(12)[None] < lengths[:, None]).astype(np.int32)
    segments = ((np.arange(12)[None] >= (lengths[:, None] // 2)) & (mask == 1)).astype(np.int32)
    ids = np.where(mask == 1, ids, 0).astype(np.int32)
    return {"input_ids": ids, "segment_ids": segments, "input_mask": mask}
