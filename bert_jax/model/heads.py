"""Models with heads on the BERT encoder: pretraining (MLM + NSP) and the fine-tuning tasks.

Every model keeps the encoder under the name `bert`, so a pretrained encoder moves between them
by copying that subtree (see `bert_jax/checkpoint/init_from.py`). All logits are returned in
float32.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from bert_jax.model.bert import BertModel, dense, gelu, layer_norm
from bert_jax.model.config import BertConfig
from bert_jax.model.dropout import Dropout


@jax.custom_vjp
def add_output_bias(logits_BxPxV: jax.Array, bias_V: jax.Array) -> jax.Array:
    """logits + bias, whose bias gradient (the sum of the logits' gradient over all B*P
    predictions) is computed as a matmul with a vector of ones: XLA:CPU reduced the [B*P, V]
    gradient over its leading axis more than ten times slower than it runs the same sum as a dot
    (as a reduce it took about 5% of the bert-small pretraining step on CPU)."""
    return logits_BxPxV + bias_V


def _add_output_bias_fwd(logits_BxPxV, bias_V):
    return logits_BxPxV + bias_V, None


def _add_output_bias_bwd(_, grad_BxPxV):
    rows = grad_BxPxV.reshape(-1, grad_BxPxV.shape[-1])
    return grad_BxPxV, jnp.ones(rows.shape[0], rows.dtype) @ rows


add_output_bias.defvjp(_add_output_bias_fwd, _add_output_bias_bwd)


class BertForPreTraining(nn.Module):
    """MLM on the masked positions and NSP on the pooled output. The masked positions are
    gathered before the last encoder layer (`gather_last_layer`; else after the encoder), so
    that layer and the [B,P,V] logits are computed for P predictions per sequence instead of
    every position. The MLM decoder is the word-embedding table plus its own bias."""

    config: BertConfig

    def setup(self):
        c = self.config
        self.bert = BertModel(c)
        self.mlm_transform = dense(c, c.hidden_size, ("embed", "embed_out"), "mlm_transform")
        self.mlm_norm = layer_norm(c, "mlm_norm")
        self.mlm_output_bias = self.param(
            "mlm_output_bias",
            nn.with_logical_partitioning(nn.initializers.zeros_init(), ("vocab",)),
            (c.vocab_size,),
            c.param_dtype,
        )
        self.nsp = dense(c, 2, ("embed", "classes"), "nsp")

    def __call__(
        self,
        input_ids,
        segment_ids=None,
        input_mask=None,
        mlm_positions=None,
        deterministic: bool = True,
    ) -> dict[str, jax.Array]:
        """`mlm_positions` [B,P]: positions to predict; None predicts every position."""
        picked_BxPxH, pooled_BxH = self.bert(
            input_ids, segment_ids, input_mask, deterministic, output_positions=mlm_positions
        )
        h = self.mlm_norm(gelu(self.config, self.mlm_transform(picked_BxPxH)))
        # Batch-sharded before the tied vocab projection. Besides being the layout we want,
        # this avoids an XLA SPMD miscompile (jax 0.10): with data, fsdp and tensor all > 1 the
        # backward pass through `attend` otherwise permutes batch rows between devices and
        # returns wrong gradients (tests/trainer/test_step.py catches it).
        h = nn.with_logical_constraint(h, ("act_batch", "act_length", "act_embed"))
        mlm_logits = self.bert.attend(h).astype(jnp.float32)
        mlm_logits = add_output_bias(mlm_logits, self.mlm_output_bias.astype(jnp.float32))
        return {
            "mlm_logits": mlm_logits,
            "nsp_logits": self.nsp(pooled_BxH).astype(jnp.float32),
            "pooled_output": pooled_BxH,
            # The encoder's output where the MLM head read it: every position, or the P
            # masked ones (then the last layer ran only there and at [CLS]).
            "sequence_output": picked_BxPxH,
        }


class BertForSequenceClassification(nn.Module):
    """Pooled output -> dropout -> dense. `num_labels=1` is regression (STS-B)."""

    config: BertConfig
    num_labels: int

    @nn.compact
    def __call__(self, input_ids, segment_ids=None, input_mask=None, deterministic: bool = True):
        _, pooled = BertModel(self.config, name="bert")(
            input_ids, segment_ids, input_mask, deterministic
        )
        pooled = Dropout(self.config.hidden_dropout)(pooled, deterministic)
        logits = dense(self.config, self.num_labels, ("embed", "classes"), "classifier")(pooled)
        return logits.astype(jnp.float32)


class BertForTokenClassification(nn.Module):
    """Per-token labels (NER): sequence output -> dropout -> dense. No pooler."""

    config: BertConfig
    num_labels: int

    @nn.compact
    def __call__(self, input_ids, segment_ids=None, input_mask=None, deterministic: bool = True):
        seq, _ = BertModel(self.config, add_pooler=False, name="bert")(
            input_ids, segment_ids, input_mask, deterministic
        )
        seq = Dropout(self.config.hidden_dropout)(seq, deterministic)
        logits = dense(self.config, self.num_labels, ("embed", "classes"), "classifier")(seq)
        return logits.astype(jnp.float32)


class BertForQuestionAnswering(nn.Module):
    """Span extraction (SQuAD): start and end logits per token, each [B,L]. No pooler."""

    config: BertConfig

    @nn.compact
    def __call__(self, input_ids, segment_ids=None, input_mask=None, deterministic: bool = True):
        seq, _ = BertModel(self.config, add_pooler=False, name="bert")(
            input_ids, segment_ids, input_mask, deterministic
        )
        logits = dense(self.config, 2, ("embed", "classes"), "qa_outputs")(seq).astype(jnp.float32)
        return logits[..., 0], logits[..., 1]


class BertForMultipleChoice(nn.Module):
    """Inputs [B,C,L] (one sequence per choice) -> one score per choice [B,C]."""

    config: BertConfig

    @nn.compact
    def __call__(self, input_ids, segment_ids=None, input_mask=None, deterministic: bool = True):
        batch, choices, length = input_ids.shape

        def flat(x):
            return None if x is None else x.reshape(batch * choices, length)

        _, pooled = BertModel(self.config, name="bert")(
            flat(input_ids), flat(segment_ids), flat(input_mask), deterministic
        )
        pooled = Dropout(self.config.hidden_dropout)(pooled, deterministic)
        scores = dense(self.config, 1, ("embed", "classes"), "classifier")(pooled)
        return scores.astype(jnp.float32).reshape(batch, choices)


# Task kind -> model class (fine-tuning configs name the kind).
TASK_MODELS = {
    "pretraining": BertForPreTraining,
    "classification": BertForSequenceClassification,
    "token_classification": BertForTokenClassification,
    "span": BertForQuestionAnswering,
    "multiple_choice": BertForMultipleChoice,
}
