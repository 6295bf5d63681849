"""bert-jax's SQuAD training windows equal what transformers' `run_qa` preprocessing makes of
the same questions (`bert_jax/bench/peers/hf_squad_ref.py` is that preprocessing, written from
`prepare_train_features`): for every question's first window, the token ids, the segment ids and
the start/end labels. This is the data half of the side-by-side SQuAD comparison; the step half
is `test_squad_step_parity.py`."""

import pytest

from bert_jax.bench.peers import hf_squad_ref as ref
from bert_jax.tasks import squad_data, squad_windows
from bert_jax.text.load import load_tokenizer
from tests.conftest import shared_path
from tests.interop.reference import minilm_dir

pytest.importorskip("transformers", reason="transformers' tokenizer is the reference")


def test_first_windows_and_labels_equal_run_qa_preprocessing():
    from transformers import AutoTokenizer

    dev, model = shared_path("squad", "dev-v1.1.json"), minilm_dir()
    theirs_tokenizer = AutoTokenizer.from_pretrained(model)
    questions = ref.load_questions(dev, slice(0, 2))
    theirs = ref.make_windows(theirs_tokenizer, questions, 256, 128, 64)
    starts, ends = ref.train_labels(theirs, questions, theirs_tokenizer.cls_token_id)

    examples, skipped = squad_data.squad_examples(
        squad_data.read_squad_file(dev).select("0:2"), True
    )
    ours = squad_windows.make_windows(load_tokenizer(model), examples, 256, 128, 64, training=True)
    assert not skipped and len(examples) == len(questions) > 300

    first_theirs, first_ours = {}, {}
    for window, question in enumerate(theirs["overflow_to_sample_mapping"]):
        first_theirs.setdefault(question, window)
    for window, example in enumerate(ours.example):
        first_ours.setdefault(int(example), window)
    answered = 0
    for question, a in first_theirs.items():
        b = first_ours[question]
        assert ours.input_ids[b].tolist() == theirs["input_ids"][a], question
        assert ours.segment_ids[b].tolist() == theirs["token_type_ids"][a], question
        labels = (int(ours.start_positions[b]), int(ours.end_positions[b]))
        assert labels == (starts[a], ends[a]), question
        answered += labels != (0, 0)
    assert answered > 0.9 * len(questions)  # most first windows hold their answer
