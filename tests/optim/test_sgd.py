"""SGD against torch.optim.SGD: 20-step trajectories for every option combination."""

import numpy as np
import pytest

import retrograd as rg
import retrograd.optim  # noqa: F401
from tests.optim._problem import compare_with_torch, trajectory

CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.5),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.05, momentum=0.5, weight_decay=0.1, nesterov=True),
    dict(lr=0.01, maximize=True),
    dict(lr=0.01, momentum=0.9, weight_decay=0.1, maximize=True),
    dict(lr=0.05, groups=[([0], dict(lr=0.1, momentum=0.9)), ([1, 2], dict(lr=0.01))]),
    dict(lr=0.05, momentum=0.5,
         groups=[([0, 2], dict(nesterov=True)), ([1], dict(lr=0.2, dampening=0.3))]),
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_matches_torch_float64(kwargs):
    compare_with_torch("SGD", np.float64, **kwargs)


@pytest.mark.parametrize("kwargs", [CASES[1], CASES[3], CASES[7]])
def test_matches_torch_float32(kwargs):
    compare_with_torch("SGD", np.float32, **kwargs)


def test_options_change_the_trajectory():
    # guards against options that are accepted but ignored
    plain = trajectory(rg, "SGD", 5, lr=0.1, momentum=0.9)[0][-1][0]
    for extra in (dict(nesterov=True), dict(dampening=0.5), dict(weight_decay=0.1),
                  dict(maximize=True)):
        other = trajectory(rg, "SGD", 5, lr=0.1, momentum=0.9, **extra)[0][-1][0]
        assert np.abs(other - plain).max() > 1e-4, extra


def test_defaults_match_torch():
    import torch
    w = rg.zeros(2, requires_grad=True)
    mine = rg.optim.SGD([w]).defaults
    theirs = torch.optim.SGD([torch.zeros(2, requires_grad=True)]).defaults
    assert mine == {k: theirs[k] for k in mine}


def test_first_momentum_step_has_no_dampening():
    w = rg.tensor([1.0], dtype=rg.float64, requires_grad=True)
    opt = rg.optim.SGD([w], lr=1.0, momentum=0.9, dampening=0.5)
    w.grad = rg.tensor([2.0], dtype=rg.float64)
    opt.step()
    np.testing.assert_array_equal(opt.state[w]["momentum_buffer"].numpy(), [2.0])
    opt.step()  # b = 0.9 * 2 + 0.5 * 2
    np.testing.assert_allclose(opt.state[w]["momentum_buffer"].numpy(), [2.8], rtol=1e-15)
    np.testing.assert_allclose(w.detach().numpy(), [1.0 - 2.0 - 2.8], rtol=1e-15)


def test_momentum_buffer_does_not_alias_the_gradient():
    w = rg.tensor([1.0, 2.0], requires_grad=True)
    opt = rg.optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = rg.tensor([1.0, 1.0])
    opt.step()
    assert not np.shares_memory(opt.state[w]["momentum_buffer"].numpy(), w.grad.numpy())


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), "SGD: Invalid learning rate: -0.1"),
    (dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (dict(lr=0.1, weight_decay=-1), "Invalid weight_decay value: -1"),
    (dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "zero dampening"),
    (dict(lr=float("nan")), "Invalid learning rate"),
    (dict(lr="0.1"), "Invalid learning rate: '0.1'"),
])
def test_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rg.optim.SGD([rg.zeros(2, requires_grad=True)], **kwargs)


def test_invalid_option_in_a_group():
    w, b = rg.zeros(2, requires_grad=True), rg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        rg.optim.SGD([{"params": [w]}, {"params": [b], "lr": -1}], lr=0.1)
