"""Hugging Face BERT directories <-> our BertForPreTraining params.

Import reads `config.json` plus `model.safetensors` (or `pytorch_model.bin`, with torch and
`weights_only=True` so no pickled code runs; sharded `*.index.json` variants too), accepts the
naming variants found in the wild (no `bert.` prefix in BertModel checkpoints, legacy
`LayerNorm.gamma/beta`, a tied `cls.predictions.decoder.*` saved or not) and reports which of
our params were loaded, which the checkpoint lacks, and which of its weights went unused.
Export writes a directory `transformers` loads as is: BertForPreTraining (or the class of the
heads present), or the task class of a fine-tuned model (`bert_jax/interop/tasks.py`), plus the
tokenizer files (`bert_jax/interop/hf_tokenizer.py`). Every file goes through `bert_jax.paths`,
so either side may be a gs:// directory. Reading tensors, downloading a remote weights file and
writing `model.safetensors` show progress bars (`bert_jax/progress.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Collection, Iterator, Mapping

import flax.linen as nn
import numpy as np

from bert_jax import paths, progress
from bert_jax.errors import UserError
from bert_jax.interop import hf_tokenizer, layout, names, tasks
from bert_jax.model.config import BertConfig, from_json_file, to_hf_dict

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Registered buffers saved by older transformers versions: constants, not weights.
_BUFFER = re.compile(r"(^|\.)embeddings\.(position_ids|token_type_ids)$")
_BARE_PREFIXES = ("embeddings.", "encoder.", "pooler.")
_DECODER_WEIGHT = "cls.predictions.decoder.weight"
_DECODER_BIAS = "cls.predictions.decoder.bias"
_WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
_OUTPUT_BIAS = "cls.predictions.bias"
_CHUNK = 16 << 20  # bytes per read or write of a weights file (and per progress update)

# canonical HF name -> (name as the source spells it, array in PyTorch layout)
Entries = dict[str, tuple[str, np.ndarray]]


def canonical_name(name: str) -> str:
    """The spelling the rule table uses: `bert.` prefix, LayerNorm `weight`/`bias`."""
    if name.endswith("LayerNorm.gamma"):
        name = name[: -len("gamma")] + "weight"
    elif name.endswith("LayerNorm.beta"):
        name = name[: -len("beta")] + "bias"
    if name.startswith(_BARE_PREFIXES):
        name = "bert." + name
    return name


def entries_from_state_dict(state: Mapping[str, np.ndarray], source: str) -> Entries:
    entries: Entries = {}
    for original, array in state.items():
        canonical = canonical_name(original)
        if canonical in entries:
            raise UserError(f"{source}: {entries[canonical][0]} and {original} are the same weight")
        entries[canonical] = (original, array)
    return entries


def _fmt(shape) -> str:
    return str(tuple(int(d) for d in shape))


def _resolve_tied(entries: Entries, source: str, ignored: list[str]) -> None:
    """The MLM decoder is the word-embedding table plus `cls.predictions.bias`; checkpoints may
    also store the decoder's tied copies. Equal copies are dropped; an untied decoder cannot be
    represented by our model (it shares the table), so it is an error rather than a guess."""
    if _DECODER_BIAS in entries:
        original, bias = entries.pop(_DECODER_BIAS)
        if _OUTPUT_BIAS in entries:
            if not np.array_equal(bias, entries[_OUTPUT_BIAS][1]):
                raise UserError(f"{source}: {original} differs from {_OUTPUT_BIAS}")
            ignored.append(original)
        else:
            entries[_OUTPUT_BIAS] = (original, bias)
    if _DECODER_WEIGHT in entries:
        original, decoder = entries.pop(_DECODER_WEIGHT)
        table = entries.get(_WORD_EMBEDDINGS, (None, None))[1]
        if table is None or decoder.shape != table.shape or not np.array_equal(decoder, table):
            raise UserError(
                f"{source}: {original} is not tied to the word embeddings; "
                "an untied MLM decoder is not supported"
            )
        ignored.append(original)


def import_entries(
    entries: Entries,
    config: BertConfig,
    source: str,
    ignored: list[str] | None = None,
    transposed: Collection[str] = (),
) -> tuple[dict, dict]:
    """Our unscanned BertForPreTraining params (numpy float32) from HF-named entries, and the
    report {loaded, missing, unused, ignored}: missing/loaded are our param paths, unused and
    ignored the source's own names. Heads the source lacks stay missing (not invented); an
    incomplete encoder or a shape that disagrees with the config is an error. `transposed`:
    source names whose arrays were transposed into HF layout (errors quote the source's shape)."""
    entries = dict(entries)
    ignored = list(ignored or [])
    for name in [n for n in entries if _BUFFER.search(n)]:
        ignored.append(entries.pop(name)[0])
    _resolve_tied(entries, source, ignored)

    flat, loaded, missing = {}, [], []
    for rule in names.rules(config):
        if rule.hf not in entries:
            missing.append(rule)
            continue
        original, array = entries.pop(rule.hf)
        want = names.hf_shape(rule, config)
        if tuple(array.shape) != want:
            have = tuple(array.shape)
            if original in transposed:
                have, want = have[::-1], want[::-1]
            raise UserError(
                f"{source}: {original} has shape {_fmt(have)}, config wants {_fmt(want)}"
            )
        flat[rule.ours] = names.to_ours(rule, np.asarray(array, np.float32), config)
        loaded.append(names.path_name(rule.ours))

    unused = sorted(original for original, _ in entries.values())
    encoder_missing = [r.hf for r in missing if r.ours[:2] in names.ENCODER_PREFIXES]
    encoder_unused = [n for n in entries if n.startswith(("bert.embeddings.", "bert.encoder."))]
    if encoder_missing or encoder_unused:
        problems = []
        if encoder_missing:
            problems.append(
                f"{len(encoder_missing)} encoder weights missing ({encoder_missing[0]}, ...)"
            )
        if encoder_unused:
            problems.append(
                f"{len(encoder_unused)} encoder weights not in the config "
                f"({entries[encoder_unused[0]][0]}, ...)"
            )
        raise UserError(
            f"{source}: checkpoint does not match its config "
            f"({config.num_layers} layers): {'; '.join(problems)}"
        )
    report = {
        "source": source,
        "loaded": loaded,
        "missing": [names.path_name(r.ours) for r in missing],
        "unused": unused,
        "ignored": sorted(ignored),
    }
    return names.unflatten(flat), report


# ----------------------------------------------------------------------------- reading


def find_weights(directory: paths.Path) -> paths.Path | None:
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def is_hf_dir(path: paths.Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and find_weights(path) is not None


@contextlib.contextmanager
def _local_file(path: paths.Path) -> Iterator[str]:
    """A local filename for `path`: itself, or a temporary copy of a remote object (the readers
    below memory-map or seek in a real file)."""
    if not paths.is_remote(path):
        yield os.fspath(path)
        return
    with tempfile.NamedTemporaryFile(suffix=path.suffix) as local:
        with path.open("rb") as remote, _byte_bar(_size(path), f"download {path.name}") as bar:
            while chunk := remote.read(_CHUNK):
                local.write(chunk)
                bar.update(len(chunk))
        local.flush()
        yield local.name


def _byte_bar(total: int | None, desc: str):
    return progress.bar(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024)


def _size(path: paths.Path) -> int | None:
    """The file's size for a progress bar's total (None where the store will not say)."""
    try:
        return int(path.stat().st_size)
    except Exception:  # noqa: BLE001 -- only a bar's total; the read itself reports errors
        return None


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), framework="numpy") as f:
        keys = list(f.keys())
        for key in progress.bar(keys, desc=f"read {os.path.basename(path)}", unit="tensor"):
            try:
                out[key] = f.get_tensor(key)
            except TypeError:
                out[key] = None  # bfloat16: numpy has no such dtype; read below through JAX
    pending = [k for k, v in out.items() if v is None]
    if pending:
        import jax

        # Kept on the host: an accelerator has no business holding a whole checkpoint here.
        with jax.default_device(jax.devices("cpu")[0]), safe_open(str(path), "flax") as f:
            for key in pending:
                out[key] = np.asarray(f.get_tensor(key), np.float32)
    return out


def _read_torch(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise UserError(
            f"{path}: reading pytorch_model.bin needs torch; install it or convert the "
            "checkpoint to model.safetensors"
        ) from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- any unpickling failure is a bad file
        raise UserError(f"{path}: not a readable PyTorch state dict ({type(e).__name__})") from None
    out = {}
    for key, tensor in state.items():
        tensor = tensor.detach()
        out[key] = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    return out


def _read_one(path: paths.Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    with _local_file(path) as local:
        if path.suffix != ".safetensors":
            return _read_torch(local)
        try:
            return _read_safetensors(local)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 -- a truncated or foreign file
            raise UserError(f"{path}: not a readable safetensors file ({e})") from None


def read_weights(path: paths.Path) -> dict[str, np.ndarray]:
    """One weights file, or every shard named by a `*.index.json`."""
    if path.name.endswith(".index.json"):
        weight_map = json.loads(path.read_text())["weight_map"]
        state: dict[str, np.ndarray] = {}
        for shard in sorted(set(weight_map.values())):
            state.update(_read_one(path.parent / shard))
        return state
    return _read_one(path)


def load_hf(directory: paths.PathLike) -> tuple[BertConfig, dict, dict]:
    """(config, unscanned params, report) from a Hugging Face BERT directory."""
    directory = paths.path(directory)
    config = from_json_file(directory / "config.json")
    weights = find_weights(directory)
    if weights is None:
        raise UserError(
            f"{directory}: config.json is there but no weights "
            f"(looked for {', '.join(WEIGHT_FILES)})"
        )
    entries = entries_from_state_dict(read_weights(weights), str(weights))
    params, report = import_entries(entries, config, str(weights))
    return config, params, {"format": "hf", **report}


# ----------------------------------------------------------------------------- writing


def count_vocab_entries(vocab: paths.PathLike) -> int:
    """Tokens in a WordPiece vocab.txt (one per line, as BERT's tokenizers read it) or in a
    SentencePiece .model."""
    vocab = paths.path(vocab)
    if vocab.suffix == ".model":
        return hf_tokenizer.load(vocab).vocab_size
    return len(vocab.read_text(encoding="utf-8").splitlines())


def check_vocab(vocab: paths.PathLike, table_rows: int) -> None:
    vocab = paths.path(vocab)
    if not vocab.is_file():
        raise UserError(f"vocab file not found: {vocab}")
    entries = count_vocab_entries(vocab)
    if entries != table_rows:
        raise UserError(f"{vocab} has {entries} entries, the embedding table has {table_rows} rows")


def to_state_dict(params: Mapping, config: BertConfig) -> tuple[dict[str, np.ndarray], list[str]]:
    """HF-named float32 arrays for the params present (scanned or not, boxed or not), and the
    HF names of the heads absent. The tied decoder is not written (transformers re-ties it)."""
    params = layout.unscan_layers(nn.unbox(dict(params)))
    if "embeddings" in params:  # a bare BertModel tree
        params = {"bert": params}
    flat = names.flatten(params)
    state, absent = {}, []
    for rule in names.rules(config):
        if rule.ours not in flat:
            absent.append(rule.hf)
            continue
        value = np.asarray(flat.pop(rule.ours))
        ours_shape = names.ours_shape(rule, config)
        if value.shape != ours_shape:
            raise UserError(
                f"param {names.path_name(rule.ours)} has shape {_fmt(value.shape)}, "
                f"config wants {_fmt(ours_shape)}"
            )
        state[rule.hf] = names.to_hf(rule, value, config)
    if flat:
        extra = sorted(names.path_name(p) for p in flat)
        raise UserError(
            f"{len(extra)} params have no Hugging Face BertForPreTraining name "
            f"({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''})"
        )
    encoder_absent = [n for n in absent if n.startswith(("bert.embeddings.", "bert.encoder."))]
    if encoder_absent:
        raise UserError(f"params lack {len(encoder_absent)} encoder weights ({encoder_absent[0]})")
    return state, absent


def save_hf(
    params: Mapping,
    config: BertConfig,
    directory: paths.PathLike,
    vocab: paths.PathLike | None = None,
    *,
    lowercase: bool | None = None,
    task: str | None = None,
    labels: list[str] | None = None,
) -> dict:
    """Write `config.json`, `model.safetensors` (and the tokenizer files) to `directory`.

    Pretraining params with every head are saved as BertForPreTraining; without NSP as
    BertForMaskedLM; encoder-only as BertModel. Absent heads are listed in the returned report,
    never made up. A fine-tuned model names its `task` (`bert_jax.model.heads.TASK_MODELS` kinds):
    its head goes to the matching transformers class, with `labels` as id2label.
    `vocab`: vocab.txt or SentencePiece .model; `lowercase`: the casing it was trained with
    (None: the tokenizer's own default)."""
    from safetensors.numpy import save

    params = dict(params)
    head_state, hf_extra = {}, {}
    if task is not None:
        head_state, hf_extra = tasks.export_head(task, params, config, labels)
        params = tasks.encoder_params(task, params)
    state, absent = to_state_dict(params, config)
    if vocab is not None:
        check_vocab(vocab, config.vocab_size)
    architecture = tasks.architecture(task) if task is not None else _architecture(absent)
    if architecture == "BertModel":  # transformers saves its base model without the prefix
        state = {k.removeprefix("bert."): v for k, v in state.items()}
    state.update(head_state)
    directory = paths.path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hf_config = {**to_hf_dict(config), "architectures": [architecture], **hf_extra}
    (directory / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
    _write_bytes(directory / "model.safetensors", save(state, metadata={"format": "pt"}))
    files = ["config.json", "model.safetensors"]
    if vocab is not None:
        files += hf_tokenizer.save_tokenizer(
            directory, vocab, lowercase, config.max_position_embeddings
        )
    return {
        "directory": os.fspath(directory),
        "files": files,
        "architecture": architecture,
        "absent": [] if task is not None else absent,
    }


def _write_bytes(target: paths.Path, data: bytes) -> None:
    """`target.write_bytes(data)` in chunks, with a progress bar (a large model written to a
    bucket takes a while)."""
    view = memoryview(data)
    with target.open("wb") as f, _byte_bar(len(data), f"write {target.name}") as bar:
        for start in range(0, len(view), _CHUNK):
            f.write(view[start : start + _CHUNK])
            bar.update(min(_CHUNK, len(view) - start))


def _architecture(absent: list[str]) -> str:
    """The transformers class whose weights are exactly the ones present."""
    if not absent:
        return "BertForPreTraining"
    if not any(n.startswith("cls.predictions.") for n in absent):
        return "BertForMaskedLM"
    return "BertModel"
