"""`bert-jax embed` on the real all-MiniLM-L6-v2 against `transformers`: each line run alone
through transformers.BertModel (tokenized by transformers' own BertTokenizer) is the reference
for our batched, padded, length-bucketed run; bad input exits 2 with one line."""

import os

os.environ.setdefault("USE_TF", "0")

import io  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bert_jax import main as cli  # noqa: E402
from tests.interop.reference import minilm_dir  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4
LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar.\tHe is making music on a stage in front of a crowd.",
    "Résumé: naïve café owners in São Paulo, 1999!",
    "Hi",
    "",
    "Call me Ishmael. Some years ago—never mind how long precisely—having little or no money "
    "in my purse, and nothing particular to interest me on shore, I thought I would sail about.",
]


@pytest.fixture(scope="module")
def expected():
    """Per line: (last hidden states [L, H], pooled output [H]) from transformers, unpadded."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model_dir = minilm_dir()
    tokenizer = transformers.BertTokenizer(str(model_dir / "vocab.txt"), do_lower_case=True)
    model = transformers.BertModel.from_pretrained(model_dir).eval()
    out = []
    for line in LINES:
        texts = line.split("\t")
        enc = tokenizer(*texts, return_tensors="pt")
        with torch.no_grad():
            result = model(**enc)
        out.append((result.last_hidden_state[0].numpy(), result.pooler_output[0].numpy()))
    return out


def run_in_process(monkeypatch, capsys, args: list[str], lines=LINES) -> tuple[int, str]:
    data = "".join(line + "\n" for line in lines).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    code = cli.main(["embed", *args])
    return code, capsys.readouterr().err


def test_mean_pooling_matches_transformers_in_a_subprocess(expected, tmp_path):
    output = tmp_path / "mean.npy"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bert_jax",
            "embed",
            f"--init_from={minilm_dir()}",
            f"--output={output}",
            "--pooling=mean",
            "--batch_size=4",
        ],  # fmt: skip
        input="".join(line + "\n" for line in LINES).encode(),
        cwd=REPO,
        capture_output=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    vectors = np.load(output)
    assert vectors.shape == (len(LINES), 384) and vectors.dtype == np.float32
    reference = np.stack([hidden.mean(0) for hidden, _ in expected])
    assert np.abs(vectors - reference).max() <= TOLERANCE


def test_cls_pooler_and_none(expected, tmp_path, monkeypatch, capsys):
    model_dir = str(minilm_dir())
    outputs = {}
    for pooling in ("cls", "pooler", "none"):
        outputs[pooling] = tmp_path / f"{pooling}.npy"
        code, err = run_in_process(
            monkeypatch,
            capsys,
            [f"--init_from={model_dir}", f"--output={outputs[pooling]}", f"--pooling={pooling}"],
        )
        assert code == 0, err
    cls, pooler = np.load(outputs["cls"]), np.load(outputs["pooler"])
    assert np.abs(cls - np.stack([h[0] for h, _ in expected])).max() <= TOLERANCE
    assert np.abs(pooler - np.stack([p for _, p in expected])).max() <= TOLERANCE

    states = np.load(outputs["none"])
    lengths = np.load(tmp_path / "none.lengths.npy")
    assert lengths.tolist() == [len(h) for h, _ in expected]
    assert states.shape == (len(LINES), max(lengths), 384)
    for row, (hidden, _) in enumerate(expected):
        assert np.abs(states[row, : lengths[row]] - hidden).max() <= TOLERANCE
        assert not states[row, lengths[row] :].any()  # padding stays zero


def test_max_len_truncates_like_transformers(tmp_path, monkeypatch, capsys):
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.BertTokenizer(str(minilm_dir() / "vocab.txt"), do_lower_case=True)
    single = [line for line in LINES if "\t" not in line]
    output = tmp_path / "short.npy"
    code, err = run_in_process(
        monkeypatch,
        capsys,
        [f"--init_from={minilm_dir()}", f"--output={output}", "--pooling=none", "--max_len=8"],
        single,
    )
    assert code == 0, err
    want = [len(tokenizer(t, truncation=True, max_length=8)["input_ids"]) for t in single]
    assert np.load(tmp_path / "short.lengths.npy").tolist() == want


def one_line_error(code: int, err: str) -> str:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_missing_checkpoint_exits_2_with_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bert_jax",
            "embed",
            f"--init_from={tmp_path / 'nowhere'}",
            f"--output={tmp_path / 'x.npy'}",
        ],  # fmt: skip
        input=b"hello\n",
        cwd=REPO,
        capture_output=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        timeout=120,
    )
    line = one_line_error(result.returncode, result.stderr.decode())
    assert f"checkpoint not found: {tmp_path / 'nowhere'}" in line


def test_vocab_that_does_not_fit_the_embedding_table(cased_vocab, tmp_path, monkeypatch, capsys):
    args = [
        f"--init_from={minilm_dir()}",
        f"--output={tmp_path / 'x.npy'}",
        f"--vocab={cased_vocab}",
    ]
    line = one_line_error(*run_in_process(monkeypatch, capsys, args))
    assert f"{cased_vocab} has 28996 entries, the embedding table has 30522 rows" in line


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--max_len=1000"], "--max_len 1000 is outside 2..512"),
        (["--output=x.txt"], "must end in .npy"),
    ],
)
def test_bad_arguments(extra, message, tmp_path, monkeypatch, capsys):
    args = [f"--init_from={minilm_dir()}", f"--output={tmp_path / 'x.npy'}", *extra]
    assert message in one_line_error(*run_in_process(monkeypatch, capsys, args))
