"""Fields every training config shares. One field per line, each with what it means.

Configs are ml_collections ConfigDicts, loaded by `--config=configs/FILE.py:ARG` and locked, so
`--config.train.batchsize=8` (a typo) fails instead of being ignored. Nothing writes into a config
at run time: values derived from the data (the vocabulary size) are passed as arguments.
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder


def model_config(size: str = "base") -> ml_collections.ConfigDict:
    """Every `bert_jax.model.config.BertConfig` field. The size fields left None come from the
    preset, so `size` is only a shorthand: e.g. MiniLM's shape is hidden_size=384, num_layers=6,
    num_heads=12, intermediate_size=1536 on any preset."""
    m = ml_collections.ConfigDict()
    m.size = size  # preset: tiny mini small medium base large, or L-{2..12}_H-{128,256,512,768}
    m.hidden_size = placeholder(int)  # width H; None: the preset's
    m.num_layers = placeholder(int)  # encoder layers; None: the preset's
    m.num_heads = placeholder(int)  # attention heads (must divide hidden_size); None: the preset's
    m.intermediate_size = placeholder(int)  # MLP width; None: the preset's (4 * hidden_size)
    m.vocab_size = 0  # 0: the vocabulary the shards were made with (metadata.json)
    m.dtype = "bfloat16"  # compute dtype; softmax, LayerNorm statistics and losses stay float32
    m.param_dtype = "float32"  # params and optimizer state
    m.hidden_dropout = 0.1  # dropout on embeddings and on each sublayer's output
    m.attention_dropout = 0.1  # dropout on attention probabilities (attention="einsum" only)
    m.max_position_embeddings = 512  # rows of the learned position table
    m.type_vocab_size = 2  # segment (token type) embeddings: sentence A and B
    m.layer_norm_eps = 1e-12  # LayerNorm epsilon, as released
    m.initializer_range = 0.02  # stddev of the truncated-normal initialisation
    m.gelu_approximate = False  # tanh GELU instead of the released exact erf GELU
    m.attention = "einsum"  # einsum (as released) | dot_product (fused, no attention dropout)
    m.scan_layers = False  # nn.scan over the layer stack: one compiled layer, a "layers" axis
    m.remat = False  # recompute each layer's activations in the backward pass
    m.remat_policy = "nothing_saveable"  # which intermediates remat keeps (jax.checkpoint_policies)
    # pretraining: the last layer only at [CLS] and the masked positions (exact; unrolled stack)
    m.gather_last_layer = True
    return m


def data_config() -> ml_collections.ConfigDict:
    """Mirrors `bert_jax.data.pretrain_config.PretrainDataConfig`, plus `vocab`, `synthetic`."""
    d = ml_collections.ConfigDict()
    d.data_dir = ""  # directory written by `bert-jax prepare` (train-*/eval-* shards + metadata)
    d.vocab = ""  # vocab.txt / .model of the shards; "": the path their metadata.json records
    d.synthetic = False  # random token batches instead of shards: for smoke runs and benchmarks
    d.demo_corpus = False  # the embedded demo corpus, prepared into WORKDIR/demo_data (quickstart)
    d.max_seq_length = 128  # tokens per sequence, [CLS] and [SEP]s included
    d.max_predictions_per_seq = 20  # masked positions per sequence (P); 20 @128, 80 @512
    d.masked_lm_prob = 0.15  # share of tokens chosen for prediction
    d.mask_token_prob = 0.8  # of the chosen: replaced by [MASK]
    d.random_token_prob = 0.1  # of the chosen: replaced by a random token
    d.short_seq_prob = 0.1  # pairs with a shorter random target length
    d.whole_word_masking = False  # mask all pieces of a word together
    d.mode = "nsp"  # nsp (BERT) | sop (sentence order) | mlm_only (no pair task, no NSP loss)
    d.shuffle_buffer = 10_000  # sequences shuffled together
    d.cycle_length = 4  # shard files each process reads at once
    d.seed = 0  # pairs, masks and shuffling of the training stream
    d.eval_seed = 1234  # pairs and masks of the held-out set: the same every evaluation
    d.prefetch_batches = 4  # host batches prepared ahead of the device
    return d


def train_config() -> ml_collections.ConfigDict:
    t = ml_collections.ConfigDict()
    t.batch_size = 256  # global sequences per optimizer step, summed over all hosts
    t.num_steps = 1_000_000  # optimizer steps in the whole run
    t.accum_steps = 1  # micro-batches per step (lax.scan): activation memory / accum_steps
    t.log_every_steps = 100  # console, TensorBoard, throughput and MFU
    t.eval_every_steps = 10_000  # evaluate on the held-out split (and after the last step)
    t.eval_batches = 50  # batches of the held-out split per evaluation
    t.eval_batch_size = 0  # global eval batch; 0: train.batch_size // train.accum_steps
    return t


def optimizer_config() -> ml_collections.ConfigDict:
    o = ml_collections.ConfigDict()
    o.name = "bert_adamw"  # bert_adamw (original: no bias correction) | adamw | lamb
    o.learning_rate = 1e-4  # peak learning rate
    o.b1 = 0.9  # first-moment decay
    o.b2 = 0.999  # second-moment decay
    o.eps = 1e-6  # added to sqrt(second moment)
    o.weight_decay = 0.01  # decoupled; never on LayerNorm parameters or biases
    o.clip_norm = 1.0  # clip gradients to this global norm; 0 disables
    o.schedule = "linear"  # linear (BERT: warmup, decay from step 0) | cosine | wsd
    o.warmup_steps = 10_000  # linear warmup from 0 to learning_rate
    o.warmup_fraction = 0.0  # > 0: warm up over this share of the run instead (fine-tuning: 0.1)
    o.decay_power = 1.0  # linear schedule: polynomial power of the decay (1 = linear)
    o.end_learning_rate = 0.0  # learning rate reached at train.num_steps
    o.decay_fraction = 0.1  # wsd: share of train.num_steps spent decaying at the end
    return o


def mesh_config() -> ml_collections.ConfigDict:
    """Device mesh axes; -1 means "all devices the other axes leave". Product = device count."""
    m = ml_collections.ConfigDict()
    m.data = -1  # pure data parallelism: params replicated, batch split
    m.fsdp = 1  # batch split AND params/optimizer state sharded (ZeRO-3)
    m.tensor = 1  # heads, mlp and vocab split inside each layer (Megatron)
    m.dcn_data = -1  # multi-slice TPU: slices along data (-1: all slices)
    m.dcn_fsdp = 1  # multi-slice TPU: slices along fsdp
    m.dcn_tensor = 1  # multi-slice TPU: slices along tensor
    return m


def checkpoint_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.save_every_steps = 10_000  # 0 disables step-based saves
    c.save_every_minutes = 30  # also save after this much wall time; 0 disables
    c.keep_last = 3  # most recent checkpoints kept
    c.keep_every = 100_000  # also keep every checkpoint at a multiple of this step; 0: none
    c.async_save = True  # write in the background while training continues
    # A new phase of one training (two-phase pretraining, configs/pretrain.py:SIZE,phase2):
    c.init_optimizer = False  # with init_from: also take its optimizer state (same optimizer)
    c.reset_step = False  # with init_optimizer: restart step and schedule at 0 (else continue)
    return c


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0  # parameter init and dropout
    config.model = model_config()
    config.data = data_config()
    config.train = train_config()
    config.optimizer = optimizer_config()
    config.mesh = mesh_config()
    config.checkpoint = checkpoint_config()
    config.resume_from = ""  # a checkpoint directory to continue (state + data position)
    config.init_from = ""  # a checkpoint to take params from (fresh optimizer and step unless
    # checkpoint.init_optimizer)
    return config
