"""The SQuAD training step against transformers' BertForQuestionAnswering trained the way the
reference fine-tuning script trains it (`bert_jax/bench/peers/hf_squad_ref.py`): torch AdamW,
weight decay 0.01 except on biases and LayerNorm weights, gradients clipped to global norm 1.0.

A small random transformers model goes through the project's importer (`init_from`); the QA head,
which `init_from` leaves fresh as fine-tuning does, is copied by hand. Dropout is 0 on both sides
and both see one fixed batch of four padded windows, one of them answered by [CLS]:
  - the loss equals transformers' `outputs.loss`, and the trainer's step differentiates it into
    transformers' gradients;
  - our `adamw` (the SQuAD config's optimizer section: clip, decay mask, schedule) given torch's
    gradients moves the params exactly as torch AdamW does, torch's rate set by a LambdaLR that
    replays our schedule;
  - three whole trainer steps leave the params torch leaves, except where a gradient is float32
    noise that Adam blows up to a step (see NOISE_GRADIENT).

Two differences from transformers are pinned rather than hidden:
  - transformers' word embeddings have `padding_idx=0`: torch never trains the [PAD] row, ours
    does (padded positions enter the start/end softmax on both sides, so the row has a gradient);
  - our linear schedule decays from step 0 (BERT's), transformers' from the end of the warmup, so
    after the warmup our rate is (N - warmup) / N of theirs.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from bert_jax import sharding
from bert_jax.bench.peers import hf_squad_ref
from bert_jax.bench.squad_cross_eval import qa_head_from_torch
from bert_jax.checkpoint import init_from
from bert_jax.interop import hf, names
from bert_jax.model.config import from_json_file
from bert_jax.tasks.sentence_batches import make_batch
from bert_jax.tasks.squad import SquadFinetune
from bert_jax.tasks.text_features import Features
from bert_jax.trainer import optim
from bert_jax.trainer import step as train_step
from bert_jax.trainer.state import TrainState
from configs import squad as squad_config

pytestmark = pytest.mark.slow  # torch, transformers and a compiled step: about 30 s

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TINY = dict(
    vocab_size=100,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=64,
    hidden_act="gelu",
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
MAX_LENGTH = 32
# (length, first context token, start, end); the third window does not hold its answer: [CLS].
WINDOWS = [(20, 7, 9, 11), (14, 5, 5, 5), (17, 6, 0, 0), (11, 4, 8, 10)]
# 3 steps of a 20-step run: warmup round(10% of 20) = 2 steps, so the rates are 0, peak/2 and
# then the decay's 0.9 peak (transformers' schedule would be back at the peak).
STEPS, NUM_STEPS, PEAK_LR = 3, 20, 1e-3
# Adam divides a gradient by its own size: where it is within 100x eps (1e-8) of zero, float32
# noise in it moves the param by up to a whole step. A few weights have such gradients by
# chance, and four tensors have them everywhere because their exact gradient is 0 (the softmax
# over positions ignores a shift of every logit): both layers' key biases, the last LayerNorm's
# bias and the QA head's bias.
NOISE_GRADIENT = 1e-6


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A saved transformers BertForQuestionAnswering with every weight perturbed (no zero bias or
    unit LayerNorm scale hides a wrong decay mask or a swapped tensor)."""
    torch.manual_seed(0)
    config = transformers.BertConfig(**TINY, attn_implementation="eager")
    model = transformers.BertForQuestionAnswering(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    directory = tmp_path_factory.mktemp("hf_qa")
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def hf_model(directory, train_pad_row=True):
    """The saved model in train mode (dropout is 0). `train_pad_row` lifts the word embeddings'
    `padding_idx`, so torch trains the [PAD] row as we do and the rest compares exactly."""
    model = transformers.BertForQuestionAnswering.from_pretrained(
        directory, attn_implementation="eager"
    )
    if train_pad_row:
        model.bert.embeddings.word_embeddings.padding_idx = None
    return model.train()


def our_params(task, directory):
    """Our params as fine-tuning gets them: the encoder through `init_from` (into the abstract
    params of the task model), the QA head copied from transformers'."""
    target = nn.unbox(jax.eval_shape(task.init_params, jax.random.key(0), task.example_batch()))
    params, report = init_from.load_encoder(str(directory), target, encoder_only=True)
    assert report.new == ["qa_outputs/bias", "qa_outputs/kernel"]
    state = {n: p.detach().numpy() for n, p in hf_model(directory).named_parameters()}
    return {
        "bert": jax.tree.map(np.asarray, params["bert"]),
        "qa_outputs": qa_head_from_torch(state),
    }


def hf_to_ours(state, config) -> dict:
    """A transformers-named tree (weights or gradients) in our names and layout, through the
    project's importer; the QA head (not in the importer's table) by hand."""
    entries = hf.entries_from_state_dict(state, "torch")
    tree, report = hf.import_entries(entries, config, "torch")
    assert report["unused"] == ["qa_outputs.bias", "qa_outputs.weight"]
    return {"bert": tree["bert"], "qa_outputs": qa_head_from_torch(state)}


def ours_to_hf(tree, config) -> dict[str, np.ndarray]:
    """Our param-shaped tree (params or gradients) in transformers' names and layout."""
    flat = names.flatten(jax.tree.map(np.asarray, tree))
    out = {}
    for rule in names.rules(config):
        if rule.ours in flat:
            out[rule.hf] = names.to_hf(rule, flat.pop(rule.ours), config)
    out["qa_outputs.weight"] = flat.pop(("qa_outputs", "kernel")).T
    out["qa_outputs.bias"] = flat.pop(("qa_outputs", "bias"))
    assert not flat, f"params without a transformers name: {sorted(flat)}"
    return out


def squad_batch(filler_rows=0):
    """The windows as the SQuAD data feeds them (`make_batch`, padded to the longest window as
    transformers' reference pads; rows past the windows weigh 0)."""
    rng = np.random.default_rng(0)
    ids, segments, labels = [], [], []
    for length, context, start, end in WINDOWS:
        row = rng.integers(5, TINY["vocab_size"], length).astype(np.int32)
        row[0], row[context - 1], row[-1] = 1, 2, 2  # [CLS] question [SEP] context [SEP]
        ids.append(row)
        segments.append((np.arange(length) >= context).astype(np.int32))
        labels.append((start, end))
    features = Features(ids, segments, np.array(labels, np.int32), np.arange(len(ids)), 0)
    return make_batch(features, np.arange(len(ids)), len(ids) + filler_rows, 0, MAX_LENGTH)


def torch_inputs(batch):
    rows = int(batch["example_weights"].sum())
    tensor = {k: torch.tensor(v[:rows], dtype=torch.long) for k, v in batch.items()}
    return dict(
        input_ids=tensor["input_ids"],
        token_type_ids=tensor["segment_ids"],
        attention_mask=tensor["input_mask"],
        start_positions=tensor["labels"][:, 0],
        end_positions=tensor["labels"][:, 1],
    )


@pytest.fixture(scope="module")
def setup(hf_dir):
    config = from_json_file(hf_dir / "config.json")
    assert (config.hidden_dropout, config.attention_dropout) == (0.0, 0.0)
    # The run's task class; its data, decoding and tokenizer play no part in a step.
    task = SquadFinetune(
        "v1.1", None, None, None, name="squad/v1.1", model_config=config, max_length=MAX_LENGTH
    )
    return config, task, our_params(task, hf_dir)


def optimizer_section():
    """The SQuAD config's optimizer as the compared run set it (optax adamw, eps 1e-8: torch's
    default), checked against the reference script's constants."""
    o = squad_config.get_config("v1.1").optimizer
    o.name, o.eps, o.learning_rate = "adamw", 1e-8, PEAK_LR
    assert (o.b1, o.b2) == (0.9, 0.999)
    assert (o.weight_decay, o.clip_norm) == (hf_squad_ref.WEIGHT_DECAY, hf_squad_ref.CLIP_NORM)
    assert (o.schedule, o.warmup_fraction) == ("linear", hf_squad_ref.WARMUP_FRACTION)
    return o


def torch_optimizer(model, schedule):
    """hf_squad_ref's AdamW parameter groups; the rate at step s is our `schedule(s)`."""
    named = list(model.named_parameters())
    exempt = hf_squad_ref.NO_DECAY
    groups = [
        {
            "params": [p for n, p in named if not any(k in n for k in exempt)],
            "weight_decay": hf_squad_ref.WEIGHT_DECAY,
        },
        {"params": [p for n, p in named if any(k in n for k in exempt)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=PEAK_LR, betas=(0.9, 0.999), eps=1e-8)
    replay = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: float(schedule(s)) / PEAK_LR)
    return opt, replay


def torch_step(model, opt, replay, inputs):
    """One step of hf_squad_ref's loop; returns (loss, rate used, gradients before clipping,
    their global norm)."""
    opt.zero_grad()
    out = model(**inputs)
    out.loss.backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), hf_squad_ref.CLIP_NORM)
    rate = opt.param_groups[0]["lr"]
    opt.step()
    replay.step()
    return out.loss.item(), rate, grads, float(norm)


def single_device_mesh():
    axes = dict(data=1, fsdp=1, tensor=1, dcn_data=1, dcn_fsdp=1, dcn_tensor=1)
    return sharding.make_mesh(ml_collections.ConfigDict(axes), jax.devices()[:1])


def our_state(params, tx):
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        rng=jax.random.PRNGKey(1),
    )


def keeping_gradients(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """`inner`, whose state also keeps the last gradient the step handed it (before clipping)."""

    def init(params):
        return inner.init(params), jax.tree.map(jnp.zeros_like, params)

    def update(grads, state, params=None):
        updates, inner_state = inner.update(grads, state[0], params)
        return updates, (inner_state, grads)

    return optax.GradientTransformation(init, update)


@pytest.fixture(scope="module")
def our_run(setup):
    """STEPS trainer steps with the SQuAD config's adamw on the batch plus a weight-0 filler row
    (as the last batch of an epoch has). Per step: (metrics, params after it, the gradient it
    took), params and gradients in transformers' names. The first step's rate is 0 (warmup), so
    its gradient is the one at the imported params."""
    config, task, params = setup
    tx, schedule = optim.make_optimizer(optimizer_section(), NUM_STEPS)
    tx = keeping_gradients(tx)
    step = jax.jit(train_step.make_train_step(task, tx, schedule, single_device_mesh()))
    state = our_state(params, tx)
    batch = squad_batch(filler_rows=1)
    steps = []
    for _ in range(STEPS):
        state, metrics = step(state, batch)
        steps.append(
            (
                jax.tree.map(float, metrics),
                ours_to_hf(state.params, config),
                ours_to_hf(state.opt_state[1], config),
            )
        )
    return steps


def test_loss_equals_transformers(our_run, hf_dir):
    metrics, _, _ = our_run[0]
    with torch.no_grad():
        theirs = hf_model(hf_dir)(**torch_inputs(squad_batch())).loss.item()
    np.testing.assert_allclose(metrics["loss"], theirs, rtol=1e-5)


def torch_gradients(hf_dir, train_pad_row=True):
    model = hf_model(hf_dir, train_pad_row)
    out = model(**torch_inputs(squad_batch()))
    out.loss.backward()
    return out.loss.item(), {n: p.grad.numpy() for n, p in model.named_parameters()}


def test_train_step_gradients_equal_transformers(our_run, hf_dir):
    _, _, ours = our_run[0]
    _, theirs = torch_gradients(hf_dir)
    assert sorted(ours) == sorted(theirs)
    # The floor is float32 noise on the largest gradient: the zero-gradient tensors (see
    # NOISE_GRADIENT) hold noise of about 1e-10 on both sides.
    floor = 1e-6 * max(np.abs(g).max() for g in theirs.values())
    for name, grad in theirs.items():
        np.testing.assert_allclose(ours[name], grad, rtol=1e-5, atol=floor, err_msg=name)


def test_pad_row_is_trained_by_us_and_not_by_transformers(our_run, hf_dir):
    _, _, ours = our_run[0]
    _, theirs = torch_gradients(hf_dir, train_pad_row=False)
    table = "bert.embeddings.word_embeddings.weight"
    assert np.all(theirs[table][0] == 0)
    assert np.abs(ours[table][0]).max() > 1e-3
    np.testing.assert_allclose(ours[table][1:], theirs[table][1:], rtol=1e-5, atol=1e-7)


def test_adamw_on_torch_gradients_equals_torch_adamw(setup, hf_dir):
    """The optimizer alone: clipping, decay mask, eps placement, bias correction and the rate of
    each step, with nothing else between the two sides."""
    config, _, params = setup
    tx, schedule = optim.make_optimizer(optimizer_section(), NUM_STEPS)
    opt_state = tx.init(params)

    @jax.jit
    def update(grads, opt_state, params):
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    model = hf_model(hf_dir)
    opt, replay = torch_optimizer(model, schedule)
    inputs = torch_inputs(squad_batch())
    for i in range(STEPS):
        _, rate, grads, _ = torch_step(model, opt, replay, inputs)
        assert rate == pytest.approx(float(schedule(i)), rel=1e-7)
        params, opt_state = update(hf_to_ours(grads, config), opt_state, params)
        ours = ours_to_hf(params, config)
        for name, p in model.named_parameters():
            np.testing.assert_allclose(
                ours[name], p.detach().numpy(), rtol=1e-6, atol=1e-8, err_msg=f"step {i} {name}"
            )


def test_three_train_steps_equal_torch_adamw(our_run, hf_dir):
    _, schedule = optim.make_optimizer(optimizer_section(), NUM_STEPS)
    model = hf_model(hf_dir)
    opt, replay = torch_optimizer(model, schedule)
    inputs = torch_inputs(squad_batch())
    noisy = {n: np.zeros(p.shape, bool) for n, p in model.named_parameters()}
    seen = {n: np.zeros(p.shape, bool) for n, p in model.named_parameters()}
    rates = []
    for i, (metrics, ours, _) in enumerate(our_run):
        loss, rate, grads, norm = torch_step(model, opt, replay, inputs)
        rates.append(rate)
        np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
        assert norm > hf_squad_ref.CLIP_NORM  # clipping takes part
        np.testing.assert_allclose(metrics["grad_norm"], norm, rtol=1e-5)
        np.testing.assert_allclose(metrics["learning_rate"], rate, rtol=1e-6)
        for name, p in model.named_parameters():
            theirs = p.detach().numpy()
            noisy[name] |= np.abs(grads[name]) < NOISE_GRADIENT
            seen[name] |= grads[name] != 0  # unused vocabulary rows and positions get exact 0s
            # Everywhere else: 1e-6 is 0.1% of one step at the peak rate.
            np.testing.assert_allclose(
                ours[name][~noisy[name]], theirs[~noisy[name]], rtol=1e-5, atol=1e-6,
                err_msg=f"step {i} {name}",
            )  # fmt: skip
            # Noise-driven moves stay within Adam's reach: a few times the rates so far.
            assert np.abs(ours[name] - theirs).max() <= 3 * sum(rates) + 1e-7, name
    assert rates == pytest.approx([0.0, PEAK_LR / 2, 0.9 * PEAK_LR])
    # The noise-driven elements are the four zero-gradient tensors (386 weights) and a few more.
    share = sum((noisy[n] & seen[n]).sum() for n in noisy) / sum(m.sum() for m in seen.values())
    assert share < 0.02


def test_linear_schedule_decays_from_step_0_unlike_transformers():
    """The compared run: 192 steps, 10% warmup. Both warm up over the same 19 steps to the same
    rates; after that ours is (192 - 19) / 192 = 0.901 of transformers' at every step."""
    num_steps, peak = 192, 5e-5
    o = optimizer_section()
    o.learning_rate = peak
    _, schedule = optim.make_optimizer(o, num_steps)
    warmup = int(hf_squad_ref.WARMUP_FRACTION * num_steps)
    assert optim.warmup_steps(o, num_steps) == warmup == 19
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    theirs = transformers.get_linear_schedule_with_warmup(opt, warmup, num_steps)
    rates = []
    for _ in range(num_steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        theirs.step()
    ours = np.array([float(schedule(s)) for s in range(num_steps)])
    np.testing.assert_allclose(ours[:warmup], rates[:warmup], rtol=1e-6, atol=1e-12)
    ratio = (num_steps - warmup) / num_steps
    np.testing.assert_allclose(ours[warmup:], ratio * np.array(rates[warmup:]), rtol=1e-5)
