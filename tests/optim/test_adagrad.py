"""Adagrad against torch.optim.Adagrad: 20-step trajectories for every option combination."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.optim  # noqa: F401
from tests.optim._problem import compare_with_torch, trajectory

CASES = [
    dict(),
    dict(lr=0.1),
    dict(lr=0.1, lr_decay=0.05),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, initial_accumulator_value=0.5),
    dict(lr=0.1, eps=1e-2),
    dict(lr=0.05, maximize=True),
    dict(lr=0.1, lr_decay=0.01, weight_decay=0.2, initial_accumulator_value=0.1, maximize=True,
         foreach=False, fused=True),
    dict(lr=0.1, groups=[([0], dict(lr=0.3, lr_decay=0.1)), ([1, 2], dict(eps=1e-3))]),
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_matches_torch_float64(kwargs):
    compare_with_torch("Adagrad", np.float64, **kwargs)


@pytest.mark.parametrize("kwargs", [CASES[1], CASES[7]])
def test_matches_torch_float32(kwargs):
    compare_with_torch("Adagrad", np.float32, **kwargs)


def test_options_change_the_trajectory():
    plain = trajectory(rg, "Adagrad", 10, lr=0.1)[0][-1][0]
    for extra in (dict(lr_decay=0.5), dict(weight_decay=0.5), dict(initial_accumulator_value=1.0),
                  dict(eps=0.5), dict(maximize=True)):
        other = trajectory(rg, "Adagrad", 10, lr=0.1, **extra)[0][-1][0]
        assert np.abs(other - plain).max() > 1e-5, extra


def test_state_exists_from_the_start_as_in_torch():
    w, v = rg.zeros(2, requires_grad=True), rg.zeros(3, requires_grad=True)
    opt = rg.optim.Adagrad([w], initial_accumulator_value=0.25)
    opt.add_param_group({"params": [v], "initial_accumulator_value": 2.0})
    assert opt.state[w]["step"].item() == 0.0 and opt.state[w]["step"].dtype == rg.float32
    np.testing.assert_array_equal(opt.state[w]["sum"].numpy(), [0.25, 0.25])
    np.testing.assert_array_equal(opt.state[v]["sum"].numpy(), [2.0, 2.0, 2.0])
    w.grad = rg.ones(2)
    opt.step()  # v has no gradient: its state stays as it was made
    assert opt.state[w]["step"].item() == 1.0 and opt.state[v]["step"].item() == 0.0


def test_defaults_match_torch():
    mine = rg.optim.Adagrad([rg.zeros(2, requires_grad=True)]).defaults
    theirs = torch.optim.Adagrad([torch.zeros(2, requires_grad=True)]).defaults
    assert mine == theirs


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-1), "Adagrad: Invalid learning rate: -1"),
    (dict(lr_decay=-1), "Adagrad: Invalid lr_decay value: -1"),
    (dict(weight_decay=-0.5), "Adagrad: Invalid weight_decay value: -0.5"),
    (dict(initial_accumulator_value=-1), "Adagrad: Invalid initial_accumulator_value value: -1"),
    (dict(eps=-1e-3), "Adagrad: Invalid epsilon value: -0.001"),
])
def test_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rg.optim.Adagrad([rg.zeros(2, requires_grad=True)], **kwargs)
