"""Normal (retrograd/distributions/normal.py): log_prob and entropy with gradients for loc,
scale and the value against torch.distributions, broadcasting of loc and scale (tensors and
numbers), rsample's reparameterized gradient, sample shapes and statistics, mean, stddev,
variance; validation errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.distributions import Normal
from tests.oracle import check_op, randn

TD = torch.distributions


@pytest.mark.parametrize("loc_shape, scale_shape, value_shape", [
    ((3,), (3,), (3,)), ((2, 3), (3,), (4, 2, 3)), ((), (), (5,)), ((2, 1), (1, 3), (2, 3))],
    ids=str)
def test_log_prob_and_entropy_match_torch(loc_shape, scale_shape, value_shape):
    loc, scale = randn(*loc_shape), randn(*scale_shape, seed=1, low=0.2)
    value = randn(*value_shape, seed=2)
    check_op(lambda m, s, v: Normal(m, s).log_prob(v),
             lambda m, s, v: TD.Normal(m, s).log_prob(v), loc, scale, value)
    check_op(lambda m, s: Normal(m, s).entropy(), lambda m, s: TD.Normal(m, s).entropy(), loc,
             scale)


def test_numbers_as_parameters_match_torch():
    check_op(lambda v: Normal(0.5, 2.0).log_prob(v), lambda v: TD.Normal(0.5, 2.0).log_prob(v),
             randn(4), dtype=np.float32)
    check_op(lambda s: Normal(1.0, s).log_prob(0.3),    # torch wants a tensor value
             lambda s: TD.Normal(1.0, s).log_prob(torch.tensor(0.3, dtype=s.dtype)),
             randn(3, low=0.5))
    assert Normal(0.0, 1.0).loc.dtype == rg.float32
    assert Normal(rg.tensor(0.0, dtype=rg.float64), 1.0).scale.dtype == rg.float64


def test_moments_match_torch():
    loc, scale = randn(2, 3), randn(3, seed=1, low=0.2)
    ours, theirs = Normal(rg.tensor(loc), rg.tensor(scale)), TD.Normal(torch.tensor(loc),
                                                                      torch.tensor(scale))
    for name in ("mean", "stddev", "variance", "mode"):
        np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(theirs, name).numpy(),
                                   rtol=1e-12)
    assert ours.batch_shape == tuple(theirs.batch_shape) == (2, 3)


def test_rsample_is_reparameterized():
    rg.manual_seed(0)
    loc = rg.tensor(randn(2, 3), requires_grad=True)
    scale = rg.tensor(randn(3, low=0.5), requires_grad=True)
    d = Normal(loc, scale)
    x = d.rsample((4,))
    assert x.shape == (4, 2, 3) and x.requires_grad and d.has_rsample
    cot = randn(4, 2, 3, seed=3)
    (x * rg.tensor(cot)).sum().backward()
    eps = (x.detach().numpy() - loc.detach().numpy()) / scale.detach().numpy()
    np.testing.assert_allclose(loc.grad.numpy(), cot.sum(0), rtol=1e-12)
    np.testing.assert_allclose(scale.grad.numpy(), (cot * eps).sum((0, 1)), rtol=1e-10)


def test_sample_has_no_gradient_and_the_right_statistics():
    rg.manual_seed(1)
    loc = rg.tensor([-2.0, 3.0], requires_grad=True)
    d = Normal(loc, rg.tensor([0.5, 2.0]))
    s = d.sample((200_000,))
    assert s.shape == (200_000, 2) and not s.requires_grad and s.dtype == rg.float32
    np.testing.assert_allclose(s.numpy().mean(0), [-2.0, 3.0], atol=0.02)
    np.testing.assert_allclose(s.numpy().std(0), [0.5, 2.0], rtol=0.01)


def test_samples_follow_the_seed():
    rg.manual_seed(5)
    a = Normal(0.0, 1.0).sample((3,)).tolist()
    rg.manual_seed(5)
    assert Normal(0.0, 1.0).sample((3,)).tolist() == a


def test_validation_errors():
    with pytest.raises(ValueError, match=r"Expected parameter scale \(Tensor of shape \(\)\) of "
                                         r"distribution Normal\(loc: 0.0, scale: -1.0\) to "
                                         r"satisfy the constraint GreaterThan\(lower_bound=0.0\)"):
        Normal(0.0, -1.0)
    with pytest.raises(ValueError, match="parameter loc"):
        Normal(float("nan"), 1.0)
    with pytest.raises(TypeError, match="Normal: scale must be a Tensor or a number"):
        Normal(0.0, "1")
    with pytest.raises(ValueError, match="Normal.log_prob: value holds nan"):
        Normal(0.0, 1.0).log_prob(rg.tensor(float("nan")))
    with pytest.raises(ValueError):
        Normal(rg.zeros(2), rg.ones(3))
    assert Normal(0.0, -1.0, validate_args=False).batch_shape == ()
