"""Peer benchmarks run beside our own, so a report can give ratios measured in the same run.

The peers live as standalone scripts in this folder (`peer_step.py`: Hugging Face
BertForPreTraining in PyTorch and Flax; `peer_masking.py`: keras-hub's masking layer in tf.data;
`peer_finetune.py`: BertForSequenceClassification in PyTorch on the batches bert-jax wrote),
so anyone reproduces the README's figures from a checkout; `--peers_dir` points elsewhere. Each
must run in its own virtual environment, never the project's: `--peer_python` names that
environment's python. Each script prints one line per peer; `run_peer` turns those lines into
figures.

A benchmark module adds the comparison with `add_peer_args(parser)` and, after its own timing
(the peer then has the machine to itself), `compare_step(...)` or `compare_masking(...)`.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

from bert_jax.errors import UserError

# The folder of this package: the peer scripts ship with the project.
PEERS_DIR = pathlib.Path(__file__).resolve().parent

PEER_SCRIPTS = {
    "step": "peer_step.py",
    "masking": "peer_masking.py",
    "finetune": "peer_finetune.py",
}

# The settings each peer script has built in: ours must match them for a fair ratio.
PEER_FIXED = {
    "step": {"predictions": 20, "vocab": 30522, "dtype": "float32", "accum": 1},
    "masking": {"batch_size": 256, "max_seq_length": 128, "max_predictions": 20},
    # The batches travel in a file; only the precision is the peer's own.
    "finetune": {"dtype": "float32"},
}

# Per script: the figure compared, and whether a smaller value is faster.
HEADLINE = {
    "step": ("s_per_step", True),
    "masking": ("seq_per_s", False),
    "finetune": ("seq_per_s", False),
}

_NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"
# One pattern per kind of printed line; the peer's name is the first word of the line.
_LINE_PATTERNS = {
    "step": re.compile(
        rf"^(?P<peer>\S+)[^:]*:\s*(?P<s_per_step>{_NUMBER})\s*s/step\s*"
        rf"\(\s*(?P<gflops>{_NUMBER})\s*model GFLOP/s\)"
        rf"(?:\s*min\s*(?P<min_s>{_NUMBER})\s*max\s*(?P<max_s>{_NUMBER}))?"
    ),
    "masking": re.compile(rf"^(?P<peer>\S+)[^:]*:\s*(?P<seq_per_s>{_NUMBER})\s*seq/s"),
    "finetune": re.compile(
        rf"^(?P<peer>\S+)[^:]*:\s*(?P<seq_per_s>{_NUMBER})\s*seq/s\s*"
        rf"(?P<s_per_step>{_NUMBER})\s*s/step\s*"
        rf"\(\s*(?P<gflops>{_NUMBER})\s*model GFLOP/s,\s*"
        rf"(?P<gflop_per_step>{_NUMBER})\s*GFLOP/step\)"
        rf"(?:\s*mean padded length\s*(?P<mean_length>{_NUMBER}))?"
    ),
}

# Variables of the project's environment that would leak its packages into the peer's python.
_PROJECT_ONLY_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


def add_peer_args(parser) -> None:
    """`--peer_python` (turns the comparison on) and `--peers_dir` on a benchmark's parser."""
    parser.add_argument(
        "--peer_python",
        metavar="PATH",
        help="python of the peer's own virtual environment: also run the peer benchmark after "
        "ours and report the ratio",
    )
    parser.add_argument(
        "--peers_dir",
        metavar="DIR",
        help=f"local folder holding the peer scripts (default: {PEERS_DIR})",
    )


def find_peer_dir(explicit: str | None) -> pathlib.Path:
    """The peers folder: `explicit` when given (a local folder: the peer python runs the scripts
    in it), else the scripts shipped in this package."""
    if not explicit:
        return PEERS_DIR
    if "://" in explicit:
        raise UserError(f"--peers_dir {explicit}: must be a local folder (the peer runs there)")
    path = pathlib.Path(explicit).expanduser()
    if not path.is_dir():
        raise UserError(f"--peers_dir {explicit}: no such directory")
    return path.resolve()


def parse_peer_output(name: str, text: str) -> dict[str, dict[str, float]]:
    """Figures per peer from a peer script's stdout; lines that are not results are skipped."""
    if name not in _LINE_PATTERNS:
        raise UserError(f"unknown peer benchmark {name!r}; choose one of {', '.join(PEER_SCRIPTS)}")
    figures = {}
    for line in text.splitlines():
        match = _LINE_PATTERNS[name].match(line.strip())
        if match:
            values = match.groupdict()
            peer = values.pop("peer")
            figures[peer] = {
                key: float(value.replace(",", "")) for key, value in values.items() if value
            }
    return figures


def run_peer(
    name: str,
    python: str,
    args: list[str],
    env: dict | None = None,
    timeout: float = 1800,
    peers_dir: str | None = None,
) -> dict[str, dict[str, float]]:
    """Run `python PEERS_DIR/script *args` and return its figures, e.g. for "step"
    {"hf-torch": {"s_per_step": 5.99, "gflops": 33.1, ...}, "hf-flax": {...}}.

    `env` adds to (or overrides) this process's environment; the variables that point Python at
    the project's own packages are dropped so the peer sees only its virtual environment.
    """
    if name not in PEER_SCRIPTS:
        raise UserError(f"unknown peer benchmark {name!r}; choose one of {', '.join(PEER_SCRIPTS)}")
    if not python:
        raise UserError(f"peer {name}: no --peer_python given (the python of the peer's venv)")
    python_path = pathlib.Path(python).expanduser()
    if not python_path.is_file() or not os.access(python_path, os.X_OK):
        raise UserError(f"--peer_python {python}: no such executable file")
    folder = find_peer_dir(peers_dir)
    script = folder / PEER_SCRIPTS[name]
    if not script.is_file():
        raise UserError(f"peer {name}: {script} is missing")

    child_env = {k: v for k, v in os.environ.items() if k not in _PROJECT_ONLY_ENV}
    child_env.update(env or {})
    command = [str(python_path), str(script), *map(str, args)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=child_env, cwd=folder, timeout=timeout
        )
    except subprocess.TimeoutExpired as e:
        raise UserError(f"peer {name}: {script.name} ran past {timeout:.0f} s") from e
    if done.returncode != 0:
        raise UserError(
            f"peer {name}: {script.name} exited with {done.returncode}: {_last_line(done.stderr)}"
        )
    figures = parse_peer_output(name, done.stdout)
    if not figures:
        raise UserError(
            f"peer {name}: no result line in {script.name}'s output "
            f"(last line: {_last_line(done.stdout) or _last_line(done.stderr)})"
        )
    return figures


def compare_step(args, config) -> dict:
    """`bench step`'s peers: the HF PyTorch and Flax steps on the same model and batch, timed
    over as many steps as ours; their figures per peer and the load average before them
    (`bench step` puts them beside its own sides). Nothing (and no settings check) without
    --peer_python."""
    if not getattr(args, "peer_python", None):
        return {}
    env = {"STEPS": str(args.steps)}
    figures, load = _run_compared("step", args, step_peer_args(config, args), env)
    return {"peers": figures, "peer_load_average_1m": round(load, 2)}


def compare_masking(args, seq_per_s: float) -> tuple[list[tuple[str, object]], dict]:
    """`bench data`'s comparison: keras-hub's masking layer in tf.data on the same number of
    sequences. Nothing (and no settings check) without --peer_python."""
    if not getattr(args, "peer_python", None):
        return [], {}
    return compare("masking", args, seq_per_s, masking_peer_args(args))


def step_peer_args(config, args) -> list[str]:
    """peer_step.py's positional arguments for `bench step`'s model, after checking the settings
    the peer has built in (20 predictions, vocab 30522, float32, no accumulation)."""
    _check_fixed("step", {k: getattr(args, k) for k in PEER_FIXED["step"]})
    shape = (config.num_layers, config.hidden_size, config.num_heads, config.intermediate_size)
    return [str(v) for v in (*shape, args.batch, args.seq)]


def masking_peer_args(args) -> list[str]:
    """peer_masking.py's argument (sequences) for `bench data`, after checking its fixed shape."""
    _check_fixed("masking", {k: getattr(args, k) for k in PEER_FIXED["masking"]})
    return [str(args.masking_sequences)]


def _check_fixed(name: str, ours: dict) -> None:
    for key, theirs in PEER_FIXED[name].items():
        if ours[key] != theirs:
            raise UserError(
                f"--peer_python: the {name} peer runs with {key}={theirs}, not {ours[key]}; "
                f"set --{key} {theirs} to compare"
            )


def compare(
    name: str, args, ours: float, peer_args: list[str], env: dict | None = None
) -> tuple[list[tuple[str, object]], dict]:
    """Run the peer when `--peer_python` was given; rows and figures with each peer's headline
    figure and our speed-up over it (>1: we are faster). `ours` is in the headline's unit:
    seconds per step for "step", sequences per second for "masking". Nothing when not asked."""
    if not getattr(args, "peer_python", None):
        return [], {}
    peers, load = _run_compared(name, args, peer_args, env)
    key, smaller_is_faster = HEADLINE[name]
    rows: list[tuple[str, object]] = []
    for peer, figures in peers.items():
        theirs = figures[key]
        figures["speedup"] = theirs / ours if smaller_is_faster else ours / theirs
        rows.append((f"peer {peer} ({key.replace('_per_', '/')})", theirs))
        rows.append((f"speed-up over {peer}", f"{figures['speedup']:.2f}x"))
    rows.append(("load average before peer (1 min)", load))
    return rows, {"peers": peers, "peer_load_average_1m": round(load, 2)}


def _run_compared(name: str, args, peer_args: list[str], env: dict | None):
    """The peer's figures and the 1-minute load average just before it started (the machines
    are shared: a high load says the ratio is less sure)."""
    load = os.getloadavg()[0]
    peers = run_peer(name, args.peer_python, peer_args, env=env, peers_dir=args.peers_dir)
    return peers, load


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
