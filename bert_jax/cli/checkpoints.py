"""`bert-jax checkpoints WORKDIR [--json]`: the steps saved in a workdir, their size on disk
and the metrics stored with each; `--export=STEP --to=DIR [--vocab=PATH]` writes one step as a
Hugging Face directory (weights, config, vocabulary and tokenizer_config.json with the casing
the model was trained with; a fine-tuned model as its transformers task class).

Listing reads the JSON files Orbax wrote next to the arrays, so it needs no JAX and no device.
WORKDIR and --to may be local or gs:// paths.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os

from bert_jax import paths
from bert_jax.checkpoint import metadata as layout
from bert_jax.cli.parser import command_parser
from bert_jax.errors import UserError

# Top-level params a Hugging Face BertForPreTraining directory has names for.
_HF_EXPORTABLE = ("bert", "mlm_transform", "mlm_norm", "mlm_output_bias", "nsp")


DESCRIPTION = """\
List the checkpoints of a training run: each saved step, its size on disk and the metrics
stored with it (reading only the small JSON files beside the arrays: no JAX, no device). With
--export=STEP --to=DIR, write one step as a Hugging Face directory: weights, config.json, the
run's vocabulary and a tokenizer_config.json with the casing the model was trained with; a
fine-tuned model is written as its transformers task class. WORKDIR and --to may be local or
gs:// paths."""

EXAMPLES = [
    "bert-jax checkpoints workdir/quickstart",
    "bert-jax checkpoints workdir/quickstart --export=STEP --to=/tmp/quickstart_hf\n"
    "    # STEP: one of the steps the listing shows",
    "bert-jax checkpoints runs/mrpc --json      # one JSON object, for scripts",
]


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("bert-jax checkpoints", DESCRIPTION, EXAMPLES)
    parser.add_argument("workdir", help="a training workdir (or its checkpoints/ directory)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    parser.add_argument("--export", type=int, metavar="STEP", help="step to export")
    parser.add_argument("--to", metavar="DIR", help="output directory of --export")
    parser.add_argument(
        "--vocab", metavar="PATH", help="vocab.txt or SentencePiece .model to export beside it"
    )
    parser.add_argument(
        "--task",
        choices=("classification", "token_classification", "span", "multiple_choice"),
        help="the head of a fine-tuned model (default: from its checkpoint metadata)",
    )
    parser.add_argument("--labels", help="comma-separated label names, in id order (id2label)")
    return parser


def _root(workdir: str) -> paths.Path:
    path = paths.path(workdir)
    try:
        found = path.is_dir()
    except Exception as e:  # gcsfs/google-auth: no credentials, no such bucket
        raise UserError(paths.describe_error(path, e)) from None
    if not found:
        raise UserError(f"workdir does not exist: {path}")
    nested = path / layout.CHECKPOINTS_SUBDIR
    return nested if nested.is_dir() else path


def describe(root: paths.Path) -> dict:
    """Everything the listing shows, as plain JSON values."""
    rows = []
    for step in layout.committed_steps(root):
        step_dir = root / str(step)
        metadata = layout.read_metadata(step_dir)
        rows.append(
            {
                "step": step,
                "bytes": layout.size_bytes(step_dir),
                "saved_unix_time": metadata.get("saved_unix_time"),
                "metrics": layout.read_metrics(step_dir) or {},
                "data_state": layout.read_data_state(step_dir),
            }
        )
    model = layout.read_metadata(root / str(rows[-1]["step"])).get("model") if rows else None
    return {
        "directory": os.fspath(root),
        "checkpoints": rows,
        "interrupted_saves": layout.interrupted_saves(root),
        "model": model,
    }


def _human_bytes(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def _print_table(listing: dict) -> None:
    print(listing["directory"])
    model = listing["model"] or {}
    if model:
        print(
            f"model: {model.get('num_layers')} layers, hidden {model.get('hidden_size')}, "
            f"vocab {model.get('vocab_size')}, scan_layers={model.get('scan_layers')}"
        )
    print(f"{'step':>10}  {'size':>10}  {'saved (UTC)':<19}  metrics")
    for row in listing["checkpoints"]:
        saved = row["saved_unix_time"]
        when = (
            datetime.datetime.fromtimestamp(saved, datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
            if saved
            else "-"
        )
        metrics = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(row["metrics"].items())
        )
        print(f"{row['step']:>10}  {_human_bytes(row['bytes']):>10}  {when:<19}  {metrics or '-'}")
    for name in listing["interrupted_saves"]:
        print(f"{'':>10}  interrupted save {name} (ignored; removed by the next run)")


def export(
    root: paths.Path,
    step: int,
    to: str,
    vocab: str | None,
    task: str | None = None,
    labels: list[str] | None = None,
) -> dict:
    """Write `step` as a Hugging Face directory through the interop exporter."""
    from bert_jax.interop import hf, hf_tokenizer, tasks

    if step not in layout.committed_steps(root):
        available = ", ".join(map(str, layout.committed_steps(root))) or "none"
        raise UserError(f"no checkpoint at step {step} in {root} (steps: {available})")
    target = paths.path(to)
    try:
        taken = (target / "model.safetensors").exists()
    except Exception as e:  # gcsfs/google-auth: no credentials, no such bucket
        raise UserError(paths.describe_error(target, e)) from None
    if taken:
        raise UserError(f"{to} already holds a model; export to a new directory")
    metadata = layout.read_metadata(root / str(step))
    # Fine-tuned runs record their model's kind and labels; pretraining runs need no task.
    stored_kind = metadata.get("model_kind")
    stored_kind = None if stored_kind == "pretraining" else stored_kind
    vocab = vocab or layout.run_vocab(metadata, root)
    lowercase = None
    if vocab is not None:
        lowercase = hf_tokenizer.trained_casing(vocab, metadata.get("vocab_fingerprint"))
    from bert_jax.checkpoint import restore as checkpoint_restore

    config, params = checkpoint_restore.load_params(root / str(step))
    task = task or stored_kind or tasks.detect(params)
    labels = labels or metadata.get("labels")
    if task is None and "classifier" in params:
        raise UserError(
            "the params have a classifier head: pass --task=classification or "
            "--task=token_classification (the two heads have the same shape)"
        )
    keep = (*_HF_EXPORTABLE, tasks.task_head(task).head) if task else _HF_EXPORTABLE
    skipped = sorted(set(params) - set(keep))
    params = {k: v for k, v in params.items() if k in keep}
    report = hf.save_hf(
        params,
        config.replace(scan_layers=False),
        target,
        vocab=vocab,
        lowercase=lowercase,
        task=task,
        labels=labels,
    )
    return {**report, "step": step, "vocab": vocab, "not_exported": skipped}


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    root = _root(args.workdir)
    if args.export is not None:
        if not args.to:
            raise UserError("--export needs --to=DIR")
        import time

        from bert_jax.report_table import SummaryTable, duration

        started = time.perf_counter()
        labels = args.labels.split(",") if args.labels else None
        result = export(root, args.export, args.to, args.vocab, args.task, labels)
        if not args.json:
            print(f"step {args.export} -> {result['directory']} ({result['architecture']})")
            if result["not_exported"]:
                print(f"not exported (no Hugging Face name): {', '.join(result['not_exported'])}")
            if not result.get("vocab"):
                print("no vocabulary found for the run: pass --vocab=PATH to export it too")
        table = SummaryTable("checkpoints --export: summary")
        table.add("read", f"step {args.export:,} of {root}")
        table.add("written", f"{result['directory']} (Hugging Face {result['architecture']})")
        table.add("files", ", ".join(result["files"]))
        if result["not_exported"]:
            table.add("not exported", ", ".join(result["not_exported"]))
        table.add("vocabulary", str(result["vocab"]) if result.get("vocab") else "none found")
        table.add("time", duration(time.perf_counter() - started))
        table.print()
        if args.json:  # the last line, for scripts
            print(json.dumps(result, sort_keys=True))
        return 0
    if args.to or args.vocab or args.task or args.labels:
        raise UserError("--to, --vocab, --task and --labels go with --export=STEP")
    listing = describe(root)
    if not listing["checkpoints"] and not listing["interrupted_saves"]:
        raise UserError(f"no checkpoints in {root}")
    if args.json:
        print(json.dumps(listing, sort_keys=True))
    else:
        _print_table(listing)
    return 0
