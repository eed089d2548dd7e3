"""Categorical (retrograd/distributions/categorical.py): log_prob, entropy, probs and logits
with their gradients against torch.distributions, from probs or logits, batched, with value
broadcasting, zero probabilities and -inf logits; sample shapes, dtype and frequencies;
validation errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.distributions import Categorical
from tests.oracle import check_op, randn

TD = torch.distributions


def _probs(*shape, seed=0):
    return np.abs(randn(*shape, seed=seed)) + 0.1


BATCHES = [(4,), (3, 4), (2, 3, 5)]


@pytest.mark.parametrize("shape", BATCHES, ids=str)
@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_log_prob_matches_torch(kind, shape):
    param = _probs(*shape) if kind == "probs" else randn(*shape)
    values = np.random.default_rng(1).integers(0, shape[-1], (2,) + shape[:-1])
    check_op(lambda p, v: Categorical(**{kind: p}).log_prob(v),
             lambda p, v: TD.Categorical(**{kind: p}).log_prob(v), param, values)


@pytest.mark.parametrize("shape", BATCHES, ids=str)
@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_entropy_probs_and_logits_match_torch(kind, shape):
    param = _probs(*shape) if kind == "probs" else randn(*shape)
    for attribute in ("probs", "logits"):
        check_op(lambda p, a=attribute: getattr(Categorical(**{kind: p}), a),
                 lambda p, a=attribute: getattr(TD.Categorical(**{kind: p}), a), param)
    check_op(lambda p: Categorical(**{kind: p}).entropy(),
             lambda p: TD.Categorical(**{kind: p}).entropy(), param)


def test_value_broadcasts_against_the_batch():
    logits = randn(3, 4)
    check_op(lambda p, v: Categorical(logits=p).log_prob(v),
             lambda p, v: TD.Categorical(logits=p).log_prob(v), logits, np.array([1]))
    check_op(lambda p, v: Categorical(logits=p).log_prob(v),
             lambda p, v: TD.Categorical(logits=p).log_prob(v), logits,
             np.array([[0, 3, 2], [1, 1, 0]]))


def test_zero_probabilities_and_minus_inf_logits_match_torch():
    probs = np.array([[0.0, 0.3, 0.7], [0.5, 0.5, 0.0]])
    check_op(lambda p: Categorical(probs=p).entropy(),
             lambda p: TD.Categorical(probs=p).entropy(), probs, gradcheck=False)
    check_op(lambda p, v: Categorical(probs=p).log_prob(v),
             lambda p, v: TD.Categorical(probs=p).log_prob(v), probs, np.array([1, 0]),
             gradcheck=False)
    logits = np.array([[-np.inf, 0.3, 1.2], [0.0, -np.inf, -np.inf]])
    check_op(lambda p: Categorical(logits=p).entropy(),
             lambda p: TD.Categorical(logits=p).entropy(), logits, gradcheck=False)
    check_op(lambda p, v: Categorical(logits=p).log_prob(v),
             lambda p, v: TD.Categorical(logits=p).log_prob(v), logits, np.array([2, 0]),
             gradcheck=False)


def test_float32_parameters_give_float32_results():
    (out,) = check_op(lambda p: Categorical(logits=p).entropy(),
                      lambda p: TD.Categorical(logits=p).entropy(), randn(3, 4), dtype=np.float32)
    assert out.dtype == rg.float32


@pytest.mark.parametrize("sample_shape", [(), (5,), (2, 3), 4], ids=str)
@pytest.mark.parametrize("batch", [(), (3,), (2, 3)], ids=str)
def test_sample_shapes_and_dtype(batch, sample_shape):
    d = Categorical(logits=rg.tensor(randn(*batch, 4)))
    expected = ((sample_shape,) if isinstance(sample_shape, int) else sample_shape) + batch
    s = d.sample(sample_shape)
    assert s.shape == expected and s.dtype == rg.int64 and not s.requires_grad
    assert ((s.numpy() >= 0) & (s.numpy() < 4)).all()
    assert d.batch_shape == batch and d.event_shape == () and d.param_shape == batch + (4,)


def test_sample_frequencies_match_the_probabilities_per_batch_entry():
    rg.manual_seed(0)
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]])
    draws = Categorical(probs=rg.tensor(probs * 3.0)).sample((100_000,)).numpy()
    for row in range(2):
        freq = np.bincount(draws[:, row], minlength=3) / len(draws)
        np.testing.assert_allclose(freq, probs[row], atol=0.008)
    assert not (draws[:, 1] == 1).any()


def test_sample_has_no_gradient_but_log_prob_of_it_does():
    logits = rg.tensor(randn(2, 3), requires_grad=True)
    d = Categorical(logits=logits)
    actions = d.sample()
    (-d.log_prob(actions).sum()).backward()        # a policy-gradient step
    probs = np.exp(logits.detach().numpy()) / np.exp(logits.detach().numpy()).sum(1, keepdims=True)
    onehot = np.eye(3)[actions.numpy()]
    np.testing.assert_allclose(logits.grad.numpy(), probs - onehot, rtol=1e-5, atol=1e-6)


def test_enumerate_support_matches_torch():
    d, t = Categorical(probs=rg.ones(2, 3)), TD.Categorical(probs=torch.ones(2, 3))
    np.testing.assert_array_equal(d.enumerate_support().numpy(), t.enumerate_support().numpy())
    assert d.enumerate_support(expand=False).shape == (3, 1)


def test_validation_errors():
    with pytest.raises(ValueError, match="either `probs` or `logits` must be specified"):
        Categorical()
    with pytest.raises(ValueError, match="either `probs` or `logits`"):
        Categorical(probs=rg.ones(3), logits=rg.ones(3))
    with pytest.raises(ValueError, match="parameter probs .* Simplex"):
        Categorical(probs=rg.tensor([0.5, -0.1]))
    with pytest.raises(ValueError, match="parameter probs .* Simplex"):
        Categorical(probs=rg.tensor([0.0, 0.0]))
    with pytest.raises(ValueError, match="parameter logits"):
        Categorical(logits=rg.tensor([0.5, float("nan")]))
    d = Categorical(probs=rg.ones(2, 3))
    with pytest.raises(ValueError, match=r"Expected value argument \(Tensor of shape \(2,\)\) to "
                                         r"be within the support \(IntegerInterval"):
        d.log_prob(rg.tensor([3, 0]))
    with pytest.raises(ValueError, match="does not broadcast with batch_shape"):
        d.log_prob(rg.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="at least one dimension"):
        Categorical(logits=rg.tensor(1.0))
    assert Categorical(probs=rg.tensor([0.5, -0.1]), validate_args=False).batch_shape == ()
    assert "Categorical(probs: size (2, 3))" == repr(d)
