"""SWAG multiple choice: the official CSV layout (quoted fields, test.csv without labels, clear
errors), each choice encoded as Hugging Face's BertTokenizer encodes the pair, [B, C, L] batches
(resumable stream, filler rows, the data x fsdp x tensor batch assembly), the step on a
2 x 2 x 2 mesh equal to one device, and a tiny fine-tune through the trainer that learns which
ending repeats a word of its context (tiny world: tests/tasks/glue_fixtures.py)."""

from __future__ import annotations

import pathlib
import types

import jax
import numpy as np
import pytest

from bert_jax import sharding
from bert_jax.checkpoint import metadata as layout
from bert_jax.errors import UserError
from bert_jax.tasks import choice, swag_data
from bert_jax.text.load import load_tokenizer
from bert_jax.trainer import loop, optim
from bert_jax.trainer import state as train_state
from bert_jax.trainer import step as train_step
from tests.tasks import glue_fixtures as world
from tests.text.references import slow_reference

HEADER = (
    ",video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label"
)

# Hand-written as the official files quote: fields holding commas or quotes are double-quoted,
# a quote inside doubled; one field spans two lines.
TRAIN_CSV = (
    HEADER
    + "\n"
    + '0,anetv_a,3416,"A man, smiling, waves. He","A man, smiling, waves.",He,gold,'
    + '"waves back, twice.","says ""hi"".",sits.,runs away.,1\n'
    + '1,lsmdc_b,17,"Someone opens\nthe door. She",Someone opens the door.,She,gen,'
    + "steps in.,sleeps.,sings.,falls.,0\n"
    + "2,lsmdc_c,18,The cat sat. It,The cat sat.,It,gold,purrs.,barks.,flies.,swims.,3\n"
)


def write(directory: pathlib.Path, name: str, text: str) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return directory


# --- the reader --------------------------------------------------------------------------------


def test_reads_the_official_layout(tmp_path):
    examples = swag_data.read_split(write(tmp_path, "train.csv", TRAIN_CSV), "train")
    assert examples[0] == swag_data.SwagExample(
        index=0,
        id="3416",
        context="A man, smiling, waves.",
        endings=("He waves back, twice.", 'He says "hi".', "He sits.", "He runs away."),
        label=1,
    )
    assert examples[1].context == "Someone opens the door." and examples[1].label == 0
    assert examples[1].endings[0] == "She steps in."
    assert (examples[2].index, examples[2].id, examples[2].label) == (2, "18", 3)


def test_test_split_has_no_labels_and_header_order_is_free(tmp_path):
    # test.csv lacks `label`; columns are found by name (here without the unnamed index).
    text = (
        "fold-ind,video-id,ending0,ending1,ending2,ending3,sent1,sent2,startphrase,gold-source\n"
        '7,v,a.,b.,c.,"d, e.",Ctx.,S2,Ctx. S2,gold\n'
    )
    (example,) = swag_data.read_split(write(tmp_path, "test.csv", text), "test")
    assert example == swag_data.SwagExample(
        0, "7", "Ctx.", ("S2 a.", "S2 b.", "S2 c.", "S2 d, e."), None
    )


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("val.csv", "", r"val.csv is empty"),
        (
            "train.csv",
            HEADER.replace(",ending3", "") + "\n",
            r"train.csv line 1: header lacks ending3",
        ),
        ("val.csv", HEADER.replace(",label", "") + "\n", r"val.csv line 1: header lacks label"),
        # The quoted field of line 3 spans lines 3-4: the bad label is on line 5.
        ("train.csv", TRAIN_CSV.replace(",swims.,3", ",swims.,4"), r"train.csv line 5: label '4'"),
        (
            "val.csv",
            TRAIN_CSV.replace(",runs away.,1", ",runs away.,x"),
            r"val.csv line 2: label 'x'",
        ),
        (
            "train.csv",
            TRAIN_CSV.replace(",sleeps.,sings.", ",sleeps."),
            r"line 3: 11 columns, expected 12",
        ),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path, name, text, message):
    write(tmp_path, name, text)
    with pytest.raises(UserError, match=message) as caught:
        swag_data.read_split(tmp_path, name.removesuffix(".csv"))
    assert str(tmp_path / name) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_file_and_unknown_split(tmp_path):
    with pytest.raises(UserError, match=r"SWAG val split expects .*val.csv: file not found"):
        swag_data.read_split(tmp_path, "val")
    with pytest.raises(UserError, match="no split 'dev'"):
        swag_data.read_split(tmp_path, "dev")


# --- encoding and batches ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vocab(tmp_path_factory) -> pathlib.Path:
    return world.write_vocab(tmp_path_factory.mktemp("vocab") / "vocab.txt")


def question(rng, index: int) -> swag_data.SwagExample:
    """Context and endings of random tiny-vocabulary words, some upper case or punctuated."""

    def text(low, high):
        words = [str(w) for w in rng.choice(world.WORDS, size=rng.integers(low, high))]
        words[0] = words[0].upper()
        return " ".join(words) + rng.choice(["", ".", ","])

    start = text(1, 4)
    endings = tuple(f"{start} {text(1, 9)}" for _ in range(4))
    return swag_data.SwagExample(index, str(index), text(2, 12), endings, int(rng.integers(0, 4)))


def test_each_choice_is_encoded_as_bert_tokenizer_encodes_the_pair(vocab):
    tokenizer = load_tokenizer(vocab)
    reference = slow_reference(vocab, lowercase=True)
    rng = np.random.default_rng(0)
    examples = [question(rng, i) for i in range(40)]
    features = choice.encode_choices(tokenizer, examples, max_length=14)
    assert len(features) == 40 and features.num_choices == 4
    assert features.labels.tolist() == [e.label for e in examples]
    assert features.choices.truncated > 20  # the pair truncation is exercised
    for q, example in enumerate(examples):
        for c, ending in enumerate(example.endings):
            expected = reference(example.context, ending, truncation="longest_first", max_length=14)
            assert features.choices.input_ids[4 * q + c].tolist() == expected["input_ids"]
            assert features.choices.segment_ids[4 * q + c].tolist() == expected["token_type_ids"]


@pytest.fixture(scope="module")
def features(vocab):
    rng = np.random.default_rng(1)
    return choice.encode_choices(load_tokenizer(vocab), [question(rng, i) for i in range(11)], 24)


def test_batch_is_questions_by_choices_by_tokens(features):
    rows = np.array([4, 9, 2])
    batch = choice.make_batch(features, rows, 5, 8, 24)
    longest = max(len(features.choices.input_ids[4 * r + c]) for r in rows for c in range(4))
    length = batch["input_ids"].shape[2]
    assert batch["input_ids"].shape == (5, 4, length) and length % 8 == 0
    assert longest <= length < longest + 8
    for i, r in enumerate(rows):
        for c in range(4):
            ids = features.choices.input_ids[4 * r + c]
            assert batch["input_ids"][i, c, : len(ids)].tolist() == ids.tolist()
            assert batch["segment_ids"][i, c, : len(ids)].tolist() == (
                features.choices.segment_ids[4 * r + c].tolist()
            )
            assert batch["input_mask"][i, c].sum() == len(ids)
            assert not batch["input_ids"][i, c, len(ids) :].any()
    assert batch["labels"].tolist() == [*features.labels[rows], 0, 0]
    assert batch["example_weights"].tolist() == [1, 1, 1, 0, 0]
    assert batch["rows"].tolist() == [4, 9, 2, -1, -1]
    assert not batch["input_mask"][3:].any()


def test_train_stream_covers_each_question_once_per_epoch_and_resumes(features):
    stream = choice.TrainStream(features, 4, 0, 8, 24, None, None)
    epoch = [next(stream) for _ in range(3)]  # 11 questions: 4 + 4 + 3 and one filler row
    rows = np.concatenate([b["rows"][b["example_weights"] > 0] for b in epoch])
    assert sorted(rows.tolist()) == list(range(11))
    assert stream.state() == {"epoch": 1, "batch": 0, "seed": 0}
    next(stream)
    resumed = choice.TrainStream(features, 4, 0, 8, 24, None, stream.state())
    for _ in range(4):
        a, b = next(stream), next(resumed)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_each_process_keeps_its_rows_of_one_global_batch(features):
    """Two processes, each holding half the batch shards, get halves of the same global batch
    (one padded length, though process 0's rows alone are shorter)."""

    def half(index):
        return types.SimpleNamespace(process_count=2, rows=lambda n: np.arange(n)[index::2])

    whole = next(choice.TrainStream(features, 8, 0, 1, 24, None, None))
    halves = [next(choice.TrainStream(features, 8, 0, 1, 24, half(i), None)) for i in (0, 1)]
    for key, value in whole.items():
        np.testing.assert_array_equal(halves[0][key], value[0::2])
        np.testing.assert_array_equal(halves[1][key], value[1::2])
    evaluation = choice.eval_batches(features, 8, 1, 24, half(1))
    np.testing.assert_array_equal(
        evaluation[0]["input_ids"],
        choice.eval_batches(features, 8, 1, 24, None)[0]["input_ids"][1::2],
    )


def test_eval_batches_hold_each_question_once(features):
    batches = choice.eval_batches(features, 4, 8, 24, None)
    rows = np.concatenate([b["rows"][b["example_weights"] > 0] for b in batches])
    assert sorted(rows.tolist()) == list(range(11)) and len(batches) == 3
    assert batches[0]["input_ids"].shape[2] >= batches[-1]["input_ids"].shape[2]


def test_global_batch_of_choices_on_data_fsdp_tensor_mesh(features):
    mesh = sharding.make_mesh(
        {"data": 2, "fsdp": 2, "tensor": 2, "dcn_data": 1, "dcn_fsdp": 1, "dcn_tensor": 1}
    )
    feed = sharding.host_feed(mesh)
    host = choice.make_batch(features, np.arange(6), 8, 8, 24)
    global_batch = sharding.to_global_batch(host, feed)
    for name, value in host.items():
        np.testing.assert_array_equal(np.asarray(global_batch[name]), value)
    ids = global_batch["input_ids"]
    # Questions split 4 ways over data x fsdp; choices and tokens whole; tensor holds copies.
    shapes = {shard.data.shape for shard in ids.addressable_shards}
    assert shapes == {(2, 4, ids.shape[2])}
    assert len(ids.addressable_shards) == 8


# --- the task on the trainer -------------------------------------------------------------------


def learnable_rows(rng, n: int) -> list[str]:
    """CSV lines of questions whose right ending repeats a word of the context; contexts use
    w0..w19, the shared start and every other ending word w20..w58."""
    context_words, other = world.WORDS[:20], world.WORDS[20:]
    lines = []
    for i in range(n):
        context = rng.choice(context_words, size=rng.integers(3, 8))
        start = " ".join(rng.choice(other, size=rng.integers(1, 3)))
        endings = [list(rng.choice(other, size=rng.integers(2, 5))) for _ in range(4)]
        label = int(rng.integers(0, 4))
        endings[label].insert(int(rng.integers(0, 3)), str(rng.choice(context)))
        fields = [str(i), "v", str(i), "", " ".join(context), start, "gold"]
        lines.append(",".join([*fields, *(" ".join(e) for e in endings), str(label)]))
    return lines


def swag_world(root: pathlib.Path, train=128, val=40) -> tuple[pathlib.Path, pathlib.Path]:
    checkpoint = world.write_checkpoint(root / "checkpoint")
    rng = np.random.default_rng(0)
    data = root / "swag"
    for split, n in (("train", train), ("val", val)):
        write(data, f"{split}.csv", "\n".join([HEADER, *learnable_rows(rng, n)]) + "\n")
    return checkpoint, data


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return swag_world(tmp_path_factory.mktemp("swag_world"))


def swag_config(checkpoint, data_dir, **overrides):
    """configs/swag.py on the tiny world: batch 8, max length 32 (one shape)."""
    from configs import swag

    config = swag.get_config("")
    config.init_from = str(checkpoint)
    config.data.data_dir = str(data_dir)
    config.data.max_seq_length = 32
    config.data.pad_multiple = 32
    config.train.batch_size = 8
    config.train.eval_batch_size = 8
    config.train.log_every_steps = 16
    config.optimizer.learning_rate = 1e-3
    config.checkpoint.save_every_minutes = 0
    for key, value in overrides.items():
        section, field = key.split(".")
        config[section][field] = value
    config.lock()
    return config


def _steps(config, mesh_sizes, steps=2):
    """Losses and params after `steps` steps on a mesh of `mesh_sizes`."""
    task = choice.build(config, None, None, 8, warn=print)
    devices = jax.devices()[: int(np.prod(list(mesh_sizes.values())))]
    mesh = sharding.make_mesh(
        {"data": 1, "fsdp": 1, "tensor": 1, "dcn_data": -1, "dcn_fsdp": 1, "dcn_tensor": 1}
        | mesh_sizes,
        devices,
    )
    tx, schedule = optim.make_optimizer(config.optimizer, 12)
    sharded = train_state.plan(train_state.init_fn(task, tx, 0), mesh)
    state = train_state.create(sharded)
    step = train_step.jit_train_step(
        train_step.make_train_step(task, tx, schedule, mesh, 1, sharded.shardings.params),
        sharded.shardings,
        mesh,
    )
    stream, losses = task.data.train(None), []
    for _ in range(steps):
        batch = sharding.to_global_batch(next(stream), sharding.host_feed(mesh))
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    return losses, jax.device_get(state.params)


@pytest.mark.slow
def test_the_step_on_data_fsdp_tensor_equals_one_device(tiny):
    config = swag_config(*tiny)
    one = _steps(config, {"data": 1})
    spread = _steps(config, {"data": 2, "fsdp": 2, "tensor": 2})
    np.testing.assert_allclose(one[0], spread[0], rtol=2e-5)
    for a, b in zip(jax.tree.leaves(one[1]), jax.tree.leaves(spread[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    assert one[0][0] != one[0][-1]  # it trained


@pytest.mark.slow
def test_finetune_learns_the_ending_that_repeats_the_context(tiny, tmp_path, capsys):
    # 5 epochs of 16 steps; one evaluation (and save) at the end.
    config = swag_config(*tiny, **{"train.num_epochs": 5.0, "train.eval_every_steps": 80})
    summaries = loop.train_and_evaluate(config, str(tmp_path / "run"), choice.build)
    out = capsys.readouterr().out
    # The encoder and pooler loaded; the MLM/NSP heads dropped; the choice scorer new.
    assert "loaded 39, new 2, dropped 7 (new: classifier/bias, classifier/kernel)" in out, out
    assert summaries.finished and {"eval/accuracy", "eval/loss", "train/loss"} <= set(summaries)
    # 40 held-out questions, chance 1/4: 30 right by luck has probability 5e-11.
    assert summaries["eval/accuracy"] >= 0.75, summaries
    root, step = layout.resolve(tmp_path / "run")
    metadata = layout.read_metadata(root / str(step))
    assert (metadata["task"], metadata["model_kind"], metadata["num_choices"]) == (
        "swag",
        "multiple_choice",
        4,
    )
    assert metadata["vocab_fingerprint"] and "num_labels" not in metadata


def test_config_is_the_papers_recipe():
    from configs import swag

    config = swag.get_config("")
    assert config.task == "swag"
    assert (config.train.batch_size, config.train.num_epochs) == (16, 3.0)
    assert (config.optimizer.learning_rate, config.optimizer.warmup_fraction) == (2e-5, 0.1)
    assert config.data.max_seq_length == 128 and "tfds" not in config.data
    assert swag.get_config("runlocal").train.num_steps == 10
    with pytest.raises(ValueError, match="unknown option"):
        swag.get_config("mrpc")
