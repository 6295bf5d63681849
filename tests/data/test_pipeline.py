"""The tf.data pretraining pipeline end to end on tiny synthetic shards: disjoint data per process,
exact resume, a fixed eval set, clear errors for bad input, global arrays on a device mesh."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from bert_jax.data import eval_data, pipeline
from bert_jax.data.pretrain_config import PretrainDataConfig
from bert_jax.errors import UserError
from tests.data import synthetic_shards as synthetic

CORPUS = synthetic.Corpus(200, seed=0, sentences=(2, 20), lengths=(1, 16))
TOKENS = CORPUS.special_tokens()
FEATURES = {
    "input_ids",
    "segment_ids",
    "input_mask",
    "mlm_positions",
    "mlm_ids",
    "mlm_weights",
    "nsp_label",
    "example_weights",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shards")
    vocab = CORPUS.vocab_size
    synthetic.write(directory, CORPUS.docs[:160], "train", num_shards=4, vocab_size=vocab)
    synthetic.write(directory, CORPUS.docs[160:], "eval", num_shards=1)
    return str(directory)


def config(data_dir, **overrides):
    fields = dict(data_dir=data_dir, shuffle_buffer=40, cycle_length=2, seed=3)
    return PretrainDataConfig(**{**fields, **overrides})


def take(iterator, count):
    return [next(iterator) for _ in range(count)]


def unmasked_docs(batch, corpus=CORPUS):
    """Documents of all real text tokens of a batch, with masked tokens restored first."""
    ids = batch["input_ids"].copy()
    rows, slots = np.nonzero(batch["mlm_weights"])
    ids[rows, batch["mlm_positions"][rows, slots]] = batch["mlm_ids"][rows, slots]
    text = ids[(batch["input_mask"] == 1) & (ids >= synthetic.BASE)]
    return set(corpus.decode(text)[0].tolist())


def test_batches_have_fixed_shapes_and_dtypes(data_dir):
    batch = next(
        pipeline.train_batches(config(data_dir), TOKENS, 16, process_index=0, process_count=1)
    )
    assert set(batch) == FEATURES
    assert batch["input_ids"].shape == (16, 128) and batch["input_ids"].dtype == np.int32
    assert batch["mlm_positions"].shape == (16, 20) and batch["mlm_weights"].dtype == np.float32
    assert batch["nsp_label"].shape == (16,) and batch["example_weights"].dtype == np.float32
    assert set(np.unique(batch["nsp_label"])) <= {0, 1}
    assert (batch["mlm_weights"].sum(1) > 0).all()


@pytest.mark.parametrize("num_files", [4, 1])  # a file per process, or documents split by index
def test_processes_read_disjoint_documents(tmp_path, data_dir, num_files):
    corpus = CORPUS
    if num_files == 1:
        corpus = synthetic.Corpus(40, seed=1, sentences=(2, 20), lengths=(1, 16))
        synthetic.write(tmp_path, corpus.docs, "train", num_shards=1)
        data_dir = str(tmp_path)
    seen = []
    for index in range(2):
        batches = pipeline.train_batches(
            config(data_dir), TOKENS, 16, process_index=index, process_count=2
        )
        docs = set()
        while batches.state()["epoch"] == 0:  # one whole epoch of this process
            docs |= unmasked_docs(next(batches), corpus)
        seen.append(docs)
    assert not seen[0] & seen[1]
    total = 160 if num_files == 4 else 40
    assert seen[0] | seen[1] == set(range(total))
    if num_files == 4:  # files 0 and 2 to process 0; documents went round-robin into files
        assert seen[0] == {d for d in range(160) if d % 4 in (0, 2)}


def test_resume_gives_the_batches_of_reading_through(data_dir):
    cfg = config(data_dir)
    through = pipeline.train_batches(cfg, TOKENS, 16, process_index=0, process_count=1)
    batches, states = [], []
    while not states or states[-1]["epoch"] < 2:  # two epochs and a bit
        batches.append(next(through))
        states.append(through.state())
    batches += take(through, 5)
    json.dumps(states)  # checkpointable as JSON
    second_epoch = next(i for i, s in enumerate(states) if s["epoch"] == 1)
    for k in (3, second_epoch + 2):  # mid-epoch, and in the second epoch
        resumed = pipeline.train_batches(
            cfg, TOKENS, 16, process_index=0, process_count=1, state=states[k - 1]
        )
        for expected in batches[k : k + 5]:
            got = next(resumed)
            for key in FEATURES:
                np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{key} after {k}")
    # The gathered form (what a multi-process run saves) resumes the same way.
    gathered = pipeline.gather_process_states(states[7])
    resumed = pipeline.train_batches(
        cfg, TOKENS, 16, process_index=0, process_count=1, state=json.loads(json.dumps(gathered))
    )
    np.testing.assert_array_equal(next(resumed)["input_ids"], batches[8]["input_ids"])


@pytest.mark.parametrize("process_count", [1, 2])
def test_resume_seeks_to_its_byte_offset_without_reading_before_it(tmp_path, process_count):
    """Everything before the saved byte offset is overwritten with garbage: a resume that read
    the shard from its start (counting records up to the saved one) would hit it."""
    corpus = synthetic.Corpus(300, seed=1, sentences=(2, 12), lengths=(4, 16))
    tokens = corpus.special_tokens()
    (path,) = synthetic.write(tmp_path, corpus.docs, "train", num_shards=1)
    cfg = config(str(tmp_path), shuffle_buffer=8, cycle_length=1)
    kw = dict(process_index=process_count - 1, process_count=process_count)
    through = pipeline.train_batches(cfg, tokens, 8 * process_count, **kw)
    batches = take(through, 30)
    state = through.state()
    batches += take(through, 3)
    through.close()
    assert state["epoch"] == 0 and state["offsets"][0] > 20, state
    offset = state["byte_offsets"][0]
    data = pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(b"\xff" * offset + data[offset:])
    resumed = pipeline.train_batches(cfg, tokens, 8 * process_count, **kw, state=state)
    for expected in batches[30:]:
        np.testing.assert_array_equal(next(resumed)["input_ids"], expected["input_ids"])
    resumed.close()


def test_resume_from_a_state_without_byte_offsets_scans_to_its_record(data_dir):
    cfg = config(data_dir)
    through = pipeline.train_batches(cfg, TOKENS, 16, process_index=0, process_count=1)
    batches = take(through, 6)
    state = through.state()
    expected = next(through)
    through.close()
    old = {k: v for k, v in state.items() if k != "byte_offsets"}  # as saved before offsets
    resumed = pipeline.train_batches(cfg, TOKENS, 16, process_index=0, process_count=1, state=old)
    np.testing.assert_array_equal(next(resumed)["input_ids"], expected["input_ids"])
    assert batches  # the state was taken mid-stream
    resumed.close()


def test_same_seed_same_stream_other_seed_other_stream(data_dir):
    def first(seed):
        it = pipeline.train_batches(
            config(data_dir, seed=seed), TOKENS, 16, process_index=0, process_count=1
        )
        return take(it, 2)

    a, b, c = first(3), first(3), first(4)
    for x, y in zip(a, b, strict=True):
        for key in FEATURES:
            np.testing.assert_array_equal(x[key], y[key])
    assert not np.array_equal(a[0]["input_ids"], c[0]["input_ids"])


def test_an_example_seen_again_gets_a_fresh_mask(data_dir):
    # mlm_only packing makes the same sequences every epoch (in another order).
    batches = pipeline.train_batches(
        config(data_dir, mode="mlm_only"), TOKENS, 16, process_index=0, process_count=1
    )
    masks = {0: {}, 1: {}}
    while True:
        batch = next(batches)
        epoch = batches.state()["epoch"]
        if epoch > 1:
            break
        for row in range(16):
            weights = batch["mlm_weights"][row] == 1
            ids = batch["input_ids"][row].copy()
            ids[batch["mlm_positions"][row][weights]] = batch["mlm_ids"][row][weights]
            key = ids.tobytes()
            masks[epoch][key] = tuple(batch["mlm_positions"][row][weights])
    again = set(masks[0]) & set(masks[1])
    assert len(again) > 20
    assert sum(masks[0][k] != masks[1][k] for k in again) > 0.9 * len(again)


def test_state_for_another_process_count_is_refused(data_dir):
    cfg = config(data_dir)
    it = pipeline.train_batches(cfg, TOKENS, 16, process_index=0, process_count=2)
    next(it)
    with pytest.raises(UserError, match="process"):
        pipeline.train_batches(cfg, TOKENS, 16, process_index=0, process_count=1, state=it.state())
    with pytest.raises(UserError, match="unchanged"):
        pipeline.train_batches(
            config(data_dir, seed=9), TOKENS, 16, process_index=0, process_count=2, state=it.state()
        )


def test_eval_set_is_fixed_finite_padded_and_independent_of_process_count(data_dir):
    cfg = config(data_dir)
    once = list(eval_data.eval_batches(cfg, TOKENS, 16, process_index=0, process_count=1))
    again = list(
        eval_data.eval_batches(
            config(data_dir, seed=99, shuffle_buffer=7),
            TOKENS,
            16,
            process_index=0,
            process_count=1,
        )
    )
    assert len(once) == len(again) >= 2
    for x, y in zip(once, again, strict=True):
        for key in FEATURES:
            np.testing.assert_array_equal(x[key], y[key])
    weights = np.concatenate([b["example_weights"] for b in once])
    real = int(weights.sum())
    assert 0 < len(weights) - real < 16 and np.all(weights[:real] == 1)  # padded, not dropped
    last = once[-1]
    pad = last["example_weights"] == 0
    assert not last["input_mask"][pad].any() and not last["mlm_weights"][pad].any()
    # Two processes together hold exactly the rows of one.
    halves = [
        list(eval_data.eval_batches(cfg, TOKENS, 16, process_index=i, process_count=2))
        for i in range(2)
    ]
    for whole, first, second in zip(once, *halves, strict=True):
        for key in FEATURES:
            np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), whole[key])
    # Only eval documents.
    assert all(d >= 160 for b in once for d in unmasked_docs(b))


@pytest.mark.parametrize(
    "overrides",
    [dict(mode="sop"), dict(mode="mlm_only"), dict(whole_word_masking=True, masked_lm_prob=0.3)],
)
def test_other_modes_run(data_dir, overrides):
    tokens = CORPUS.special_tokens(word_start=np.arange(CORPUS.vocab_size) % 3 != 0)
    batch = next(
        pipeline.train_batches(
            config(data_dir, **overrides), tokens, 16, process_index=0, process_count=1
        )
    )
    if overrides.get("mode") == "mlm_only":
        assert not batch["segment_ids"].any() and not batch["nsp_label"].any()
    else:
        assert batch["segment_ids"].any()
    assert (batch["mlm_weights"].sum(1) > 0).all()


def test_bad_inputs_raise_user_errors(tmp_path, data_dir):
    def build(cfg, batch=16, count=1, tokens=TOKENS):
        return pipeline.train_batches(cfg, tokens, batch, process_index=0, process_count=count)

    with pytest.raises(UserError, match="max_predictions_per_seq 126"):
        build(config(data_dir, max_predictions_per_seq=126))
    with pytest.raises(UserError, match="no train"):
        build(config(str(tmp_path)))
    with pytest.raises(UserError, match="not a directory"):
        build(config(str(tmp_path / "missing")))
    with pytest.raises(UserError, match="global batch 15 is not divisible by 2"):
        build(config(data_dir), batch=15, count=2)
    with pytest.raises(UserError, match="vocab of"):
        build(config(data_dir), tokens=synthetic.Corpus(201).special_tokens())
    with pytest.raises(UserError, match="whole_word_masking"):
        build(config(data_dir, whole_word_masking=True))
    with pytest.raises(UserError, match="mode"):
        build(config(data_dir, mode="nsp+sop"))


def write_records(directory, records):
    import tensorflow as tf

    directory.mkdir()
    with tf.io.TFRecordWriter(str(directory / "train-00000-of-00001.tfrecord")) as writer:
        for features in records:
            feature = {
                k: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
                if isinstance(v[0], int)
                else tf.train.Feature(float_list=tf.train.FloatList(value=v))
                for k, v in features.items()
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return str(directory)


@pytest.mark.parametrize(
    "records,message",
    [
        ([{"token_ids": [1001, 1002, 1003], "sentence_lengths": [1, 1]}], "add up to 2"),
        ([{"token_ids": [1.5, 2.5], "sentence_lengths": [2]}], "not pretraining documents"),
        ([{"token_ids": [1001, 10**12], "sentence_lengths": [2]}], "outside the vocab"),
        ([{"token_ids": [1001], "sentence_lengths": [1]}], "made no sop examples"),
    ],
)
def test_bad_records_raise_user_errors_not_tf_errors(tmp_path, records, message):
    directory = write_records(tmp_path / "bad", records)
    batches = pipeline.train_batches(
        config(directory, mode="sop"), TOKENS, 4, process_index=0, process_count=1
    )
    with pytest.raises(UserError, match=message):
        next(batches)


def test_corrupt_shard_raises_user_error(tmp_path):
    (path,) = synthetic.write(tmp_path, synthetic.Corpus(30).docs, "train", num_shards=1)
    data = pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(data[:100] + bytes(50) + data[150:])
    batches = pipeline.train_batches(
        config(str(tmp_path)), TOKENS, 4, process_index=0, process_count=1
    )
    with pytest.raises(
        UserError, match=r"train-00000-of-00001.tfrecord: corrupted TFRecord at byte"
    ):
        next(batches)


def test_incomplete_shard_set_is_refused(tmp_path):
    synthetic.write(tmp_path, synthetic.Corpus(10).docs, "train", num_shards=3)
    (tmp_path / "train-00001-of-00003.tfrecord").unlink()
    with pytest.raises(UserError, match="2 of the 3 train shards"):
        pipeline.train_batches(config(str(tmp_path)), TOKENS, 4, process_index=0, process_count=1)


def test_data_modules_import_without_jax_or_tensorflow():
    code = (
        "import sys; import bert_jax.data.pipeline, bert_jax.data.eval_data, "
        "bert_jax.data.pretraining, bert_jax.data.shard_reader; "
        "bad = {'jax', 'tensorflow'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
