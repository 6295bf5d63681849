"""The peer scripts ship in the package (the README's peer figures come from them), import
without their peer's libraries, and count the FLOPs of what they run as bert-jax counts them."""

import ast

import pytest

from bert_jax.bench import peers, step
from bert_jax.bench.peers import peer_masking, peer_step
from bert_jax.model.config import preset

# bert-small, the README's `bench step` config: 4 layers, hidden 512, mlp 2048, vocab 30522,
# batch 16 x 128, 20 masked positions per sequence.
L, H, F, V, B, S, P = 4, 512, 2048, 30522, 16, 128, 20


def analytic_step_flops(mlm_positions: int, last_layer_rows: int = S) -> int:
    """The count written out (2 FLOPs per multiply-add, forward + backward = 3 x forward).
    `last_layer_rows`: the positions at which the last layer computes queries, the attention
    output and the MLP (keys and values: always all S)."""
    kv = 2 * (2 * H * H)  # key and value projections, per token per layer
    q_out_mlp = 2 * (2 * H * H + 2 * H * F)  # query and output projections, mlp in and out
    attention = 2 * S * H + 2 * S * H  # q.k scores and the weighted sum of v, per query row
    layer = S * (kv + q_out_mlp + attention)
    last = S * kv + last_layer_rows * (q_out_mlp + attention)
    encoder = (L - 1) * layer + last  # per sequence
    mlm_head = mlm_positions * 2 * (H * H + V * H)  # transform + tied vocab projection
    pooler_nsp = 2 * (H * H + 2 * H)
    return 3 * B * (encoder + mlm_head + pooler_nsp)


def test_default_peers_dir_is_the_shipped_folder():
    folder = peers.find_peer_dir(None)
    assert folder == peers.PEERS_DIR and folder.name == "peers"
    for script in peers.PEER_SCRIPTS.values():
        source = (folder / script).read_text()
        ast.parse(source)  # parses as Python
        assert 'if __name__ == "__main__":' in source  # importing runs no benchmark


def test_peer_scripts_import_without_their_libraries():
    assert callable(peer_step.main) and callable(peer_masking.main)
    assert peers.PEER_FIXED["step"]["vocab"] == peer_step.VOCAB
    assert peers.PEER_FIXED["step"]["predictions"] == peer_step.PREDICTIONS
    assert tuple(peers.PEER_FIXED["masking"].values()) == (
        peer_masking.BATCH,
        peer_masking.SEQ,
        peer_masking.PREDICTIONS,
    )


def test_flop_accounting_of_each_side_against_the_analytic_count():
    config = preset("small", vocab_size=V)
    ours = step.side_flops(config, B, S, P)
    # The masked step runs the last layer at the P masked positions and [CLS] only.
    assert ours["masked"] == analytic_step_flops(P, last_layer_rows=P + 1)
    assert analytic_step_flops(P) == 191_594_201_088  # the last layer everywhere
    assert ours["all_positions"] == analytic_step_flops(S) == 356_335_583_232
    # The peers project every position onto the vocabulary: bert-jax's all-positions count.
    assert peer_step.model_flops(L, H, F, V, B, S, mlm_positions=S) == ours["all_positions"]
    # What the masked gather saves is exactly the MLM head on the S - P other positions and
    # the last layer's queries, attention, output projection and MLP on all but P + 1 rows.
    saved = ours["all_positions"] - ours["masked"]
    last_layer_row = 2 * (2 * H * H + 2 * H * F) + 4 * S * H
    expected = 3 * B * ((S - P) * 2 * (H * H + V * H) + (S - P - 1) * last_layer_row)
    assert saved == pytest.approx(expected)


def test_peer_step_labels_as_many_positions_as_bert_jax_predicts():
    ids, labels, nsp = peer_step.make_batch(4, 64)
    assert ids.shape == labels.shape == (4, 64) and nsp.shape == (4,)
    assert ((labels != -100).sum(axis=1) == peer_step.PREDICTIONS).all()


def test_finetune_peer_counts_flops_as_bert_jax_at_the_same_padded_length():
    import numpy as np

    from bert_jax.bench import finetune
    from bert_jax.bench.peers import peer_finetune
    from bert_jax.model.config import BertConfig
    from bert_jax.tasks.classification import SequenceClassificationTask
    from bert_jax.trainer import flops

    # all-MiniLM-L6-v2 (6 layers, hidden 384, mlp 1536), batch 32 padded to 64 tokens, written
    # out: per token per layer 2 (4 H^2 + 2 H F) + 4 S H, pooler + 2-way classifier 2 (H^2 + 2H)
    # per sequence, forward + backward = 3 x forward.
    layers, hidden, mlp, batch, seq = 6, 384, 1536, 32, 64
    per_token = layers * (2 * (4 * hidden**2 + 2 * hidden * mlp) + 4 * seq * hidden)
    written = 3 * batch * (seq * per_token + 2 * (hidden**2 + 2 * hidden))
    assert written == 134_111_969_280

    config = BertConfig(**finetune.MINILM_SHAPE)
    task = SequenceClassificationTask("glue/mrpc", config, 2, ("f1",), "f1", 128)
    padded = {"input_ids": np.zeros((batch, seq), np.int32)}
    assert task.step_flops(padded) == flops.train_flops(config, batch, seq, 0) == written
    assert peer_finetune.model_flops(layers, hidden, mlp, batch, seq) == written
    architecture = {"num_layers": layers, "hidden_size": hidden, "intermediate_size": mlp}
    assert peer_finetune.batch_flops(architecture, padded) == written
    assert task.num_labels == peer_finetune.NUM_LABELS
