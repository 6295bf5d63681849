"""The BERT encoder in Flax Linen, exactly as the released checkpoints define it.

Post-LN layers, learned absolute positions, erf GELU, LayerNorm eps 1e-12, truncated-normal
init. Every parameter carries logical axis names; `bert_jax/sharding.py` maps them to mesh
axes. Shapes in comments: B batch, L length, H hidden, N heads, D head dim, F mlp.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bert_jax.errors import UserError
from bert_jax.model.config import BertConfig
from bert_jax.model.dropout import Dropout


def truncated_normal(stddev: float):
    """TF's `truncated_normal_initializer`: N(0, stddev) cut at two stddevs, *not* rescaled
    (JAX's own truncated_normal rescales to the nominal stddev; BERT's checkpoints did not)."""

    def init(key, shape, dtype=jnp.float32):
        return (
            jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32).astype(dtype) * stddev
        )

    return init


class _FlatSafePartitioned(nn.LogicallyPartitioned):
    """`nn.LogicallyPartitioned` that skips the sharding constraint while DenseGeneral holds
    its kernel/bias flattened to 2-D (it initialises [in, prod(out)], unboxes, then reshapes:
    google/flax#3676). With a mesh in scope the plain box would constrain the 2-D value with the
    3-D names and fail, at init and at every `apply` (Flax re-runs init abstractly to check
    shapes). Once reshaped, the value has the full rank and is constrained as usual."""

    def unbox(self, apply_constraint=True):
        if jnp.ndim(self.value) != len(self.names):
            return self.value
        return super().unbox(apply_constraint)


def _logical_init(init, names: tuple[str | None, ...]):
    def boxed(key, shape, dtype=jnp.float32):
        return _FlatSafePartitioned(init(key, shape, dtype), names)

    return boxed


def dense(
    config: BertConfig,
    features: int | Sequence[int],
    names: tuple[str | None, ...],
    name: str,
    axis: int | tuple[int, ...] = -1,
) -> nn.DenseGeneral:
    """A dense layer whose kernel and bias carry logical axis `names` (bias: the output axes)."""
    n_out = 1 if isinstance(features, int) else len(features)
    return nn.DenseGeneral(
        features,
        axis=axis,
        dtype=config.dtype,
        param_dtype=config.param_dtype,
        kernel_init=_logical_init(truncated_normal(config.initializer_range), names),
        bias_init=_logical_init(nn.initializers.zeros_init(), names[-n_out:]),
        name=name,
    )


def take_rows(x_BxLxH: jax.Array, rows_BxQ: jax.Array) -> jax.Array:
    """x at the given positions of each sequence: [B,Q,H]."""
    return jnp.take_along_axis(x_BxLxH, rows_BxQ[..., None], axis=1)


def layer_norm(config: BertConfig, name: str) -> nn.LayerNorm:
    # Flax computes the statistics in float32 even when `dtype` is bfloat16.
    return nn.LayerNorm(
        epsilon=config.layer_norm_eps,
        dtype=config.dtype,
        param_dtype=config.param_dtype,
        scale_init=nn.with_logical_partitioning(nn.initializers.ones_init(), ("norm",)),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), ("norm",)),
        name=name,
    )


def gelu(config: BertConfig, x: jax.Array) -> jax.Array:
    """x * Phi(x) with Phi = (1 + erf(x / sqrt 2)) / 2, exactly as BERT's own code (and Hugging
    Face's) writes it; `gelu_approximate` selects the tanh form. `jax.nn.gelu(approximate=False)`
    goes through erfc instead, which XLA evaluates with an extra exp and branches: about 1.5x
    the cost of this form, forward and backward. The two agree within 1e-6 everywhere (erfc is
    only more precise in the far negative tail, where GELU is within 1e-6 of 0)."""
    if config.gelu_approximate:
        return nn.gelu(x, approximate=True)
    return 0.5 * x * (1.0 + lax.erf(x * np.asarray(np.sqrt(0.5), x.dtype)))


class Embeddings(nn.Module):
    """word + learned position + token type -> LayerNorm -> dropout."""

    config: BertConfig

    def setup(self):
        c = self.config

        def table(size: int, names: tuple[str, str], name: str) -> nn.Embed:
            init = nn.with_logical_partitioning(truncated_normal(c.initializer_range), names)
            return nn.Embed(
                size, c.hidden_size, c.dtype, c.param_dtype, embedding_init=init, name=name
            )

        self.word_embeddings = table(c.vocab_size, ("vocab", "embed"), "word_embeddings")
        self.position_embeddings = table(
            c.max_position_embeddings, ("position", "embed"), "position_embeddings"
        )
        self.token_type_embeddings = table(
            c.type_vocab_size, ("token_type", "embed"), "token_type_embeddings"
        )
        self.layer_norm = layer_norm(c, "LayerNorm")
        self.dropout = Dropout(c.hidden_dropout)

    def __call__(self, input_ids_BxL, segment_ids_BxL, deterministic: bool) -> jax.Array:
        length = input_ids_BxL.shape[-1]
        if length > self.config.max_position_embeddings:
            # A gather past the table would silently clamp to the last position.
            raise UserError(
                f"sequence length {length} exceeds the position table "
                f"(max_position_embeddings {self.config.max_position_embeddings})"
            )
        x = self.word_embeddings(input_ids_BxL)
        x = x + self.position_embeddings(jnp.arange(length))[None]
        x = x + self.token_type_embeddings(segment_ids_BxL)
        return self.dropout(self.layer_norm(x), deterministic)

    def attend(self, x_BxPxH: jax.Array) -> jax.Array:
        """Logits against the word-embedding table: the MLM decoder is tied to it."""
        return self.word_embeddings.attend(x_BxPxH)


class SelfAttention(nn.Module):
    config: BertConfig
    deterministic: bool

    @nn.compact
    def __call__(self, x_BxQxH, x_BxLxH, mask_BxL) -> jax.Array:
        """Queries from `x_BxQxH` (every position, or a gathered subset of them), keys and
        values from every position `x_BxLxH`."""
        c = self.config
        heads = (c.num_heads, c.head_dim)
        q = dense(c, heads, ("embed", "heads", "kv"), "query")(x_BxQxH)
        k = dense(c, heads, ("embed", "heads", "kv"), "key")(x_BxLxH)
        v = dense(c, heads, ("embed", "heads", "kv"), "value")(x_BxLxH)
        if c.attention == "dot_product":
            if not self.deterministic and c.attention_dropout > 0:
                raise UserError(
                    "attention='dot_product' has no attention-probability dropout; "
                    "set attention_dropout=0 or use attention='einsum'"
                )
            ctx = jax.nn.dot_product_attention(q, k, v, mask=mask_BxL[:, None, None, :])
        else:
            q = q / jnp.sqrt(c.head_dim).astype(q.dtype)
            scores = jnp.einsum("bqnd,bknd->bnqk", q, k, preferred_element_type=jnp.float32)
            # Padding keys get the most negative float32: zero probability, never NaN.
            scores = jnp.where(mask_BxL[:, None, None, :], scores, jnp.finfo(jnp.float32).min)
            probs = jax.nn.softmax(scores, axis=-1)
            probs = Dropout(c.attention_dropout)(probs, self.deterministic)
            ctx = jnp.einsum("bnqk,bknd->bqnd", probs.astype(v.dtype), v)
        return dense(c, c.hidden_size, ("heads", "kv", "embed"), "output", axis=(-2, -1))(ctx)


class EncoderLayer(nn.Module):
    """LN(x + drop(attn(x))) then LN(h + drop(W2 gelu(W1 h))): BERT's post-LN block."""

    config: BertConfig
    deterministic: bool

    @nn.compact
    def __call__(self, x_BxLxH, mask_BxL, rows_BxQ=None):
        """`rows_BxQ`: compute the output only at these positions (their queries attend to
        every position); None: at every position."""
        c = self.config
        drop = Dropout(c.hidden_dropout)
        x_BxQxH = x_BxLxH if rows_BxQ is None else take_rows(x_BxLxH, rows_BxQ)
        attn = SelfAttention(c, self.deterministic, name="attention")(x_BxQxH, x_BxLxH, mask_BxL)
        x = layer_norm(c, "attention_norm")(x_BxQxH + drop(attn, self.deterministic))
        h = gelu(c, dense(c, c.intermediate_size, ("embed", "mlp"), "intermediate")(x))
        h = dense(c, c.hidden_size, ("mlp", "embed"), "output")(h)
        x = layer_norm(c, "output_norm")(x + drop(h, self.deterministic))
        x = nn.with_logical_constraint(x, ("act_batch", "act_length", "act_embed"))
        # (carry, output) so the same module serves nn.scan.
        return x, None


class Encoder(nn.Module):
    """The layer stack: unrolled (`layer_0` ...) or scanned (`layers`, leading axis = layer).

    With `rows_BxQ` only those positions of the output are returned. Where the config
    `gathers_last_layer`, the last layer computes only them: its output at a position depends on
    the other positions only through their keys and values, so this is exact, and it skips the
    query, attention-output and MLP matmuls (and their backward) at every other position.
    Otherwise (a scanned stack runs one layer body for all layers) every position is computed
    and the rows are gathered after the stack."""

    config: BertConfig

    @nn.compact
    def __call__(self, x_BxLxH, mask_BxL, deterministic: bool, rows_BxQ=None) -> jax.Array:
        c = self.config
        layer = EncoderLayer
        if c.remat:
            policy = getattr(jax.checkpoint_policies, c.remat_policy)
            layer = nn.remat(layer, policy=policy, prevent_cse=not c.scan_layers)
        if c.scan_layers:
            stack = nn.scan(
                layer,
                variable_axes={"params": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(nn.broadcast,),
                length=c.num_layers,
                metadata_params={nn.PARTITION_NAME: "layers"},
            )
            x_BxLxH, _ = stack(c, deterministic, name="layers")(x_BxLxH, mask_BxL)
        else:
            last = c.num_layers - 1
            for i in range(c.num_layers):
                rows = rows_BxQ if i == last and c.gathers_last_layer else None
                x_BxLxH, _ = layer(c, deterministic, name=f"layer_{i}")(x_BxLxH, mask_BxL, rows)
        if rows_BxQ is None or c.gathers_last_layer:
            return x_BxLxH
        return take_rows(x_BxLxH, rows_BxQ)


class Pooler(nn.Module):
    """tanh(W h_[CLS] + b): the pooled output NSP and sentence-level heads read."""

    config: BertConfig

    @nn.compact
    def __call__(self, x_BxLxH) -> jax.Array:
        return jnp.tanh(
            dense(self.config, self.config.hidden_size, ("embed", "embed_out"), "dense")(
                x_BxLxH[:, 0]
            )
        )


class BertModel(nn.Module):
    """Embeddings -> encoder (-> pooler). Returns (sequence_output [B,L,H], pooled [B,H] | None);
    with `output_positions` [B,P], the sequence output at those positions only ([B,P,H])."""

    config: BertConfig
    add_pooler: bool = True

    def setup(self):
        self.embeddings = Embeddings(self.config)
        self.encoder = Encoder(self.config)
        if self.add_pooler:
            self.pooler = Pooler(self.config)

    def __call__(
        self,
        input_ids,
        segment_ids=None,
        input_mask=None,
        deterministic: bool = True,
        output_positions=None,
    ):
        if segment_ids is None:
            segment_ids = jnp.zeros_like(input_ids)
        if input_mask is None:
            input_mask = jnp.ones_like(input_ids)
        x = self.embeddings(input_ids, segment_ids, deterministic)
        rows = output_positions
        if rows is not None and self.add_pooler:
            # The pooler reads [CLS] (position 0): it is row 0 of what the encoder returns.
            rows = jnp.concatenate([jnp.zeros_like(rows[:, :1]), rows], axis=1)
        x = self.encoder(x, input_mask.astype(bool), deterministic, rows)
        pooled = self.pooler(x) if self.add_pooler else None
        if output_positions is not None and self.add_pooler:
            x = x[:, 1:]
        return x, pooled

    def attend(self, x_BxPxH: jax.Array) -> jax.Array:
        return self.embeddings.attend(x_BxPxH)
