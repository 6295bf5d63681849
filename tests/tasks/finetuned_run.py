"""One tiny MRPC fine-tune through the real `bert-jax finetune` (a 1-layer, 32-wide model from
scratch, 4 steps on a hand-written MRPC-layout folder), trained once per test process and copied
for each test module that reads or rewrites it (outputs, evaluate, predict)."""

from __future__ import annotations

import csv
import pathlib
import random
import shutil

from bert_jax import main as cli
from bert_jax.checkpoint import metadata as layout

REPO = pathlib.Path(__file__).resolve().parents[2]
# The whole vocabulary, with [PAD] [UNK] [CLS] [SEP] [MASK].
WORDS = [
    "the", "cat", "dog", "sat", "on", "a", "mat", "ran", "fast",
    "slow", "red", "blue", "big", "small", "house", "tree", "car", "road",
]  # fmt: skip
TEST_IDS = [7, 3, 100, 42, 5, 11, 0]  # GLUE's ids need not be the row order
STEPS, EVAL_EVERY = 4, 2

_PRISTINE: dict[str, pathlib.Path] = {}


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))


def _labelled(rng: random.Random, n: int) -> str:
    rows = ["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"]  # MRPC's files start with a BOM
    for i in range(n):
        a = _sentence(rng)
        same = rng.random() < 0.5
        rows.append(f"{int(same)}\t{1000 + i}\t{2000 + i}\t{a}\t{a if same else _sentence(rng)}")
    return "\n".join(rows) + "\n"


def write_mrpc(root: pathlib.Path) -> pathlib.Path:
    """GLUE's layout (root/MRPC/{train,dev,test}.tsv) with a small vocabulary beside it."""
    rng = random.Random(0)
    (root / "MRPC").mkdir(parents=True)
    (root / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n"
    )
    (root / "MRPC" / "train.tsv").write_text(_labelled(rng, 32))
    (root / "MRPC" / "dev.tsv").write_text(_labelled(rng, 20))
    test = ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    test += [f"{i}\t{k}\t{k}\t{_sentence(rng)}\t{_sentence(rng)}" for k, i in enumerate(TEST_IDS)]
    (root / "MRPC" / "test.tsv").write_text("\n".join(test) + "\n")
    return root


def _finetune(tmp_path_factory) -> pathlib.Path:
    data = write_mrpc(tmp_path_factory.mktemp("glue"))
    workdir = tmp_path_factory.mktemp("mrpc_run") / "work"
    vocab_size = len((data / "vocab.txt").read_text().split())
    code = cli.main([
        "finetune",
        f"--config={REPO / 'configs' / 'glue.py'}:mrpc",
        f"--workdir={workdir}",
        f"--config.data.data_dir={data}",
        f"--config.data.vocab={data / 'vocab.txt'}",
        "--config.data.max_seq_length=32",  # with pad_multiple 32: one shape, one compilation
        "--config.model.size=tiny",
        "--config.model.num_layers=1",
        "--config.model.hidden_size=32",
        "--config.model.num_heads=2",
        "--config.model.intermediate_size=64",
        f"--config.model.vocab_size={vocab_size}",
        "--config.train.batch_size=8",
        f"--config.train.num_steps={STEPS}",
        f"--config.train.eval_every_steps={EVAL_EVERY}",
        "--config.train.eval_batch_size=8",
        f"--config.train.log_every_steps={EVAL_EVERY}",
        "--config.optimizer.learning_rate=3e-3",
        # Large random weights: logits that differ from example to example after 4 steps.
        "--config.model.initializer_range=0.5",
    ])  # fmt: skip
    assert code == 0
    return workdir


def finetuned_copy(tmp_path_factory, name: str) -> pathlib.Path:
    """A private copy of the session's tiny MRPC run (trained at the first call)."""
    if "mrpc" not in _PRISTINE:
        _PRISTINE["mrpc"] = _finetune(tmp_path_factory)
    copy = tmp_path_factory.mktemp(name) / "work"
    shutil.copytree(_PRISTINE["mrpc"], copy)
    return copy


def read_tsv(path: pathlib.Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def stored_metrics(workdir: pathlib.Path) -> dict[int, dict]:
    root = layout.checkpoint_dir(workdir)
    return {step: layout.read_metrics(root / str(step)) for step in layout.committed_steps(root)}


def data_dir(workdir: pathlib.Path) -> pathlib.Path:
    """The GLUE folder the run was trained on (from its stored config)."""
    root = layout.checkpoint_dir(workdir)
    metadata = layout.read_metadata(root / str(layout.committed_steps(root)[-1]))
    return pathlib.Path(metadata["run_config"]["data"]["data_dir"])
