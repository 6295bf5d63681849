"""What the pretraining input pipeline needs to know: `PretrainDataConfig` (the knobs, mapped from
the training config) and `SpecialTokens` (ids and the word-start table, taken from a tokenizer).

Both are plain frozen dataclasses so tests build them without a vocab file, and nothing here
imports TensorFlow or JAX.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bert_jax.errors import UserError

# "nsp": original BERT sentence pairs; "sop": ALBERT sentence-order pairs;
# "mlm_only": RoBERTa FULL-SENTENCES packing, one segment, no pair task (nsp_label always 0).
MODES = ("nsp", "sop", "mlm_only")


@dataclasses.dataclass(frozen=True)
class PretrainDataConfig:
    data_dir: str
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15  # share of tokens (counting [CLS]/[SEP]) chosen for prediction
    mask_token_prob: float = 0.8  # of the chosen: replaced by [MASK]
    random_token_prob: float = 0.1  # of the chosen: replaced by a token uniform over the vocab
    short_seq_prob: float = 0.1  # pairs whose target length is drawn from [2, max]
    whole_word_masking: bool = False
    mode: str = "nsp"
    # Examples shuffled together: each round reads about this many sequences' worth of tokens
    # from `cycle_length` shard files at once and permutes every example made from them.
    shuffle_buffer: int = 10_000
    cycle_length: int = 4  # shard files a process reads at once (their documents are mixed)
    seed: int = 0
    eval_seed: int = 1234  # pairs and masks of the eval set: the same set and masks every eval
    prefetch_batches: int = 4

    def validate(self) -> PretrainDataConfig:
        """Raise UserError naming the field and its value for anything the pipeline cannot run."""
        if self.mode not in MODES:
            raise UserError(f"data mode {self.mode!r} is not one of {', '.join(MODES)}")
        minimum_length = 3 if self.mode == "mlm_only" else 5  # [CLS] A [SEP] B [SEP]
        if self.max_seq_length < minimum_length:
            raise UserError(
                f"max_seq_length {self.max_seq_length} is too short for mode {self.mode!r} "
                f"(at least {minimum_length})"
            )
        most_predictions = self.max_seq_length - 3
        if not 1 <= self.max_predictions_per_seq <= most_predictions:
            raise UserError(
                f"max_predictions_per_seq {self.max_predictions_per_seq} must be in "
                f"[1, {most_predictions}] for max_seq_length {self.max_seq_length} "
                "(a sequence holds at most max_seq_length - 3 maskable tokens)"
            )
        if not 0.0 < self.masked_lm_prob <= 1.0:
            raise UserError(f"masked_lm_prob {self.masked_lm_prob} must be in (0, 1]")
        for name in ("mask_token_prob", "random_token_prob", "short_seq_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserError(f"{name} {value} must be in [0, 1]")
        if self.mask_token_prob + self.random_token_prob > 1.0 + 1e-9:
            raise UserError(
                f"mask_token_prob {self.mask_token_prob} + random_token_prob "
                f"{self.random_token_prob} exceeds 1"
            )
        for name in ("shuffle_buffer", "cycle_length", "prefetch_batches"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} {getattr(self, name)} must be at least 1")
        return self


@dataclasses.dataclass(frozen=True, eq=False)
class SpecialTokens:
    """Token ids the pipeline writes or must never mask, and which pieces begin a word."""

    vocab_size: int
    cls_id: int
    sep_id: int
    pad_id: int
    mask_id: int
    # bool [vocab_size]: True where a piece begins a word ('##' pieces False). Needed only for
    # whole-word masking.
    word_start: np.ndarray | None = None

    def __post_init__(self):
        for name in ("cls_id", "sep_id", "pad_id", "mask_id"):
            value = getattr(self, name)
            if not 0 <= value < self.vocab_size:
                raise UserError(f"{name} {value} is outside the vocab of {self.vocab_size} tokens")
        if self.word_start is not None:
            table = np.asarray(self.word_start, dtype=bool)
            if table.shape != (self.vocab_size,):
                raise UserError(
                    f"word-start table has shape {table.shape}, expected ({self.vocab_size},)"
                )
            object.__setattr__(self, "word_start", table)

    @classmethod
    def from_tokenizer(cls, tokenizer) -> SpecialTokens:
        """From `bert_jax.text.tokenizer` tokenizers (or anything with the same attributes)."""
        return cls(
            vocab_size=int(tokenizer.vocab_size),
            cls_id=int(tokenizer.cls_id),
            sep_id=int(tokenizer.sep_id),
            pad_id=int(tokenizer.pad_id),
            mask_id=int(tokenizer.mask_id),
            word_start=tokenizer.word_start_table(),
        )


def check_masking_inputs(config: PretrainDataConfig, tokens: SpecialTokens) -> None:
    if config.whole_word_masking and tokens.word_start is None:
        raise UserError("whole_word_masking needs the tokenizer's word-start table; none given")
