"""Adadelta against torch.optim.Adadelta: 20-step trajectories for every option combination."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.optim  # noqa: F401
from tests.optim._problem import compare_with_torch, trajectory

CASES = [
    dict(),
    dict(lr=0.5),
    dict(rho=0.5, eps=1e-3),
    dict(weight_decay=0.1),
    dict(maximize=True, lr=0.3),
    dict(rho=0.0),
    dict(rho=1.0, eps=1e-2),
    dict(lr=0.7, rho=0.8, weight_decay=0.2, maximize=True, foreach=False),
    dict(groups=[([0], dict(lr=2.0, rho=0.95)), ([1, 2], dict(weight_decay=0.1))]),
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_matches_torch_float64(kwargs):
    compare_with_torch("Adadelta", np.float64, **kwargs)


@pytest.mark.parametrize("kwargs", [CASES[0], CASES[7]])
def test_matches_torch_float32(kwargs):
    compare_with_torch("Adadelta", np.float32, **kwargs)


def test_options_change_the_trajectory():
    plain = trajectory(rg, "Adadelta", 10)[0][-1][0]
    for extra in (dict(lr=0.5), dict(rho=0.5), dict(eps=1e-3), dict(weight_decay=0.5),
                  dict(maximize=True)):
        other = trajectory(rg, "Adadelta", 10, **extra)[0][-1][0]
        assert np.abs(other - plain).max() > 1e-5, extra


def test_defaults_match_torch():
    mine = rg.optim.Adadelta([rg.zeros(2, requires_grad=True)]).defaults
    theirs = torch.optim.Adadelta([torch.zeros(2, requires_grad=True)]).defaults
    assert mine == theirs


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-1), "Adadelta: Invalid learning rate: -1"),
    (dict(rho=1.5), "Adadelta: Invalid rho value: 1.5"),
    (dict(rho=-0.1), "Adadelta: Invalid rho value: -0.1"),
    (dict(eps=-1.0), "Adadelta: Invalid epsilon value: -1.0"),
    (dict(weight_decay=-0.1), "Adadelta: Invalid weight_decay value: -0.1"),
    (dict(lr="fast"), "Adadelta: Invalid learning rate: 'fast' \\(expected a real number\\)"),
])
def test_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rg.optim.Adadelta([rg.zeros(2, requires_grad=True)], **kwargs)
