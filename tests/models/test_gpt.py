"""The character GPT: against the same architecture in torch (float64, outputs and every
parameter gradient after copying the weights), causality, training, sampling, errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.datasets.text import load_text_splits
from retrograd.models.gpt import GPT, GPTConfig, sample_next
from retrograd.nn import functional as F
from tests.datasets.test_text import SAMPLE
from tests.torch_gpt import TorchGPT


def _randomize(model, seed=0):
    """Random weights everywhere (LayerNorm affines and biases too, 1 and 0 at init), so every
    parameter's role shows in the gradients."""
    rng = np.random.default_rng(seed)
    with rg.no_grad():
        for name, p in model.named_parameters():
            noise = rng.standard_normal(p.shape)
            if p.ndim > 1:
                p._data[...] = 0.3 * noise
            else:
                is_norm = name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))
                p._data[...] = 0.1 * noise + (1.0 if is_norm else 0.0)
    return model


def _pair(tie_weights, seed=0):
    rg.manual_seed(seed)
    config = GPTConfig(vocab_size=13, context=9, n_layer=2, n_head=2, d_model=8,
                       tie_weights=tie_weights)
    model = _randomize(GPT(config).double(), seed)
    reference = TorchGPT(config).double()
    reference.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy())
                               for k, v in model.state_dict().items()})
    return model, reference


@pytest.mark.parametrize("tie_weights", [True, False])
def test_matches_torch_outputs_and_every_parameter_gradient(tie_weights):
    model, reference = _pair(tie_weights)
    idx = np.random.default_rng(1).integers(0, 13, (3, 9))
    cotangent = np.random.default_rng(2).standard_normal((3, 9, 13))
    logits = model(rg.tensor(idx))
    expected = reference(torch.from_numpy(idx))
    np.testing.assert_allclose(logits.detach().numpy(), expected.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    (logits * rg.tensor(cotangent)).sum().backward()
    (expected * torch.from_numpy(cotangent)).sum().backward()
    ours = dict(model.named_parameters())
    theirs = dict(reference.named_parameters())
    assert ours.keys() == theirs.keys()
    assert len(ours) == 2 + 2 * 12 + 2 + (0 if tie_weights else 1)
    for name, p in ours.items():
        assert p.grad is not None and np.abs(p.grad.numpy()).max() > 0, name
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-9,
                                   atol=1e-11, err_msg=name)


def test_shorter_sequences_use_the_first_positions_only():
    model, reference = _pair(True)
    idx = np.random.default_rng(3).integers(0, 13, (2, 4))
    logits = model(rg.tensor(idx))
    logits.sum().backward()
    np.testing.assert_allclose(logits.detach().numpy(),
                               reference(torch.from_numpy(idx)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    grad = model.wpe.weight.grad.numpy()
    assert np.abs(grad[:4]).min() > 0 and not grad[4:].any()


@pytest.mark.parametrize("t", [0, 4, 8])
def test_changing_token_t_does_not_change_the_logits_before_t(t):
    model, _ = _pair(False)
    idx = np.random.default_rng(4).integers(0, 13, (2, 9))
    changed = idx.copy()
    changed[:, t] = (changed[:, t] + 5) % 13
    before = model(rg.tensor(idx)).detach().numpy()
    after = model(rg.tensor(changed)).detach().numpy()
    np.testing.assert_array_equal(before[:, :t], after[:, :t])
    assert np.abs(before[:, t:] - after[:, t:]).min(axis=-1).min() > 0  # every later position


def test_init_follows_gpt2():
    rg.manual_seed(0)
    model = GPT(vocab_size=50, context=64, n_layer=4, n_head=4, d_model=64)
    assert model.head.weight is model.wte.weight
    assert abs(float(model.wte.weight.detach().numpy().std()) - 0.02) < 0.002
    residual = model.blocks[0].mlp.proj.weight.detach().numpy().std()
    assert abs(float(residual) - 0.02 / np.sqrt(8)) < 0.001
    assert not model.blocks[0].attn.qkv.bias.detach().numpy().any()
    assert model.ln_f.weight.detach().numpy().tolist() == [1.0] * 64
    assert model.wte.weight.dtype == rg.float32


def test_a_few_training_steps_lower_the_loss():
    rg.manual_seed(0)
    train_set, _, tok = load_text_splits(SAMPLE, context=32)
    model = GPT(vocab_size=tok.vocab_size, context=32, n_layer=1, n_head=2, d_model=32)
    optimizer = rg.optim.AdamW(model.parameters(), lr=3e-3)
    x, y = train_set.get_batch(np.arange(0, 1600, 100))
    losses = []
    for _ in range(25):
        loss = F.cross_entropy(model(x).reshape(-1, tok.vocab_size), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert abs(losses[0] - np.log(tok.vocab_size)) < 0.1   # starts near uniform
    assert losses[-1] < losses[0] - 0.8


def _small_model(seed=0):
    rg.manual_seed(seed)
    return _randomize(GPT(vocab_size=13, context=6, n_layer=1, n_head=2, d_model=8), seed)


def test_generation_is_reproducible_with_a_seed():
    model = _small_model()
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    a = model.generate(prompt, 12, generator=np.random.default_rng(7)).numpy()
    b = model.generate(prompt, 12, generator=np.random.default_rng(7)).numpy()
    c = model.generate(prompt, 12, generator=np.random.default_rng(8)).numpy()
    assert a.shape == (2, 15) and np.array_equal(a[:, :3], prompt)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    rg.manual_seed(5)
    d = model.generate(prompt, 12).numpy()
    rg.manual_seed(5)
    assert np.array_equal(d, model.generate(prompt, 12).numpy())
    assert model.training  # generate restores the mode


def test_top_1_is_greedy_and_slides_past_the_context():
    model = _small_model()
    ids = np.array([[3, 1]])
    out = model.generate(ids, 10, top_k=1, generator=np.random.default_rng(0)).numpy()
    greedy = ids
    for _ in range(10):   # by hand: argmax over the last 6 (= context) tokens
        logits = model(rg.tensor(greedy[:, -6:])).detach().numpy()[:, -1]
        greedy = np.concatenate([greedy, logits.argmax(-1)[:, None]], axis=1)
    assert np.array_equal(out, greedy)


def test_top_k_restricts_the_support_and_frequencies_follow_the_softmax():
    logits = np.random.default_rng(0).standard_normal((1, 10)) * 2
    rows = np.repeat(logits, 20000, axis=0)
    top3 = set(np.argsort(logits[0])[-3:].tolist())
    drawn = sample_next(rows, top_k=3, generator=np.random.default_rng(1))
    assert set(drawn.tolist()) == top3
    free = sample_next(rows, temperature=1.0, generator=np.random.default_rng(2))
    probs = np.exp(logits[0] - logits.max())
    probs /= probs.sum()
    np.testing.assert_allclose(np.bincount(free, minlength=10) / 20000, probs, atol=0.012)
    cold = sample_next(rows[:100], temperature=1e-3, generator=np.random.default_rng(3))
    assert (cold == logits.argmax()).all()


def test_errors():
    model = _small_model()
    with pytest.raises(ValueError, match="the prompt has 7 tokens, longer than the model's "
                                         "context of 6"):
        model.generate(np.zeros((1, 7), dtype=np.int64), 1)
    with pytest.raises(ValueError, match="sequence length 7 is longer than the context 6"):
        model(rg.zeros(1, 7, dtype=rg.int64))
    with pytest.raises(ValueError, match="integer token ids"):
        model(rg.zeros(1, 3))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sample_next(np.zeros((1, 3)), temperature=0.0)
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        sample_next(np.zeros((1, 3)), top_k=0)
    with pytest.raises(ValueError, match="d_model \\(10\\) must be divisible by n_head \\(4\\)"):
        GPTConfig(vocab_size=5, d_model=10, n_head=4)
