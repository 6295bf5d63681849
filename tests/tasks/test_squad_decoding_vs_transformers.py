"""bert-jax's SQuAD v1.1 decoding against transformers' `run_qa` post-processing
(`postprocess_qa_predictions`, as `bert_jax/bench/peers/hf_squad_ref.py` writes it) on the same
logits: the decoding half of the side-by-side SQuAD comparison (the data half is
`test_squad_features_vs_transformers.py`, the step half `test_squad_step_parity.py`).

Random logits are the hard case: every window's 20 best starts and ends are scattered over the
question, the context and the [SEP]s, so the rules on which pairs may answer (context tokens
only, end not before start, at most 30 tokens) decide most answers. The questions compared are
those with one window on both sides; where a context needs several, the two sides cut different
windows (transformers' `stride` is the overlap, run_squad's `doc_stride` the distance between
window starts) and run_squad also asks that a start token have its maximum context in the
window, a rule `run_qa` does not have.
"""

import numpy as np
import pytest

from bert_jax.bench.peers import hf_squad_ref as ref
from bert_jax.tasks import squad_data, squad_decode, squad_windows
from bert_jax.text.load import load_tokenizer
from tests.conftest import shared_path
from tests.interop.reference import minilm_dir

pytest.importorskip("transformers", reason="transformers' tokenizer is the reference")

MAX_LENGTH, STRIDE, MAX_QUERY = 384, 128, 64


def test_answers_from_the_same_logits_equal_run_qa_postprocessing():
    from transformers import AutoTokenizer

    dev, model = shared_path("squad", "dev-v1.1.json"), minilm_dir()
    questions = ref.load_questions(dev, slice(-2, None))
    theirs = ref.make_windows(
        AutoTokenizer.from_pretrained(model), questions, MAX_LENGTH, STRIDE, MAX_QUERY
    )
    examples, skipped = squad_data.squad_examples(
        squad_data.read_squad_file(dev).select("-2:"), False
    )
    ours = squad_windows.make_windows(
        load_tokenizer(model), examples, MAX_LENGTH, STRIDE, MAX_QUERY, training=False
    )
    assert not skipped and [e.qid for e in examples] == [q["id"] for q in questions]

    # The logits transformers' model would give each of its windows, drawn at random.
    rng = np.random.default_rng(0)
    logits = [
        (rng.normal(size=len(ids)).astype(np.float32), rng.normal(size=len(ids)).astype(np.float32))
        for ids in theirs["input_ids"]
    ]
    their_windows = np.bincount(theirs["overflow_to_sample_mapping"], minlength=len(questions))
    our_windows = np.bincount(ours.example, minlength=len(questions))
    single = np.flatnonzero((their_windows == 1) & (our_windows == 1))
    assert len(single) > 0.9 * len(questions) > 300

    # Our windows get the same logits where they are the same windows; the rest stay random.
    start = rng.normal(size=(len(ours), MAX_LENGTH)).astype(np.float32)
    end = rng.normal(size=(len(ours), MAX_LENGTH)).astype(np.float32)
    their_window = {q: w for w, q in enumerate(theirs["overflow_to_sample_mapping"])}
    our_window = {int(q): w for w, q in enumerate(ours.example)}
    for q in single:
        a, b = their_window[q], our_window[q]
        assert ours.input_ids[b].tolist() == theirs["input_ids"][a], questions[q]["id"]
        n = len(theirs["input_ids"][a])
        start[b, :n], end[b, :n] = logits[a]

    expected = ref.best_answers(questions, theirs, logits)
    got = squad_decode.decode(start, end, ours, examples).answers
    different = [
        (questions[q]["id"], expected[questions[q]["id"]], got[questions[q]["id"]])
        for q in single
        if got[questions[q]["id"]] != expected[questions[q]["id"]]
    ]
    assert not different, f"{len(different)} of {len(single)} answers differ: {different[:5]}"
    # The test can fail: most answers are not the context's first span nor empty.
    assert len({expected[questions[q]["id"]] for q in single}) > 0.8 * len(single)
