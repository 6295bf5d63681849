"""Checkpoint interop: import Hugging Face / Google TF1 BERT checkpoints, export Hugging Face
directories, and move params between the scanned and unrolled encoder layouts.

    config, params, report = load_pretrained("path/to/checkpoint")
"""

from bert_jax.interop.layout import scan_layers, unscan_layers
from bert_jax.interop.load import format_report, load_pretrained

__all__ = ["format_report", "load_pretrained", "scan_layers", "unscan_layers"]
