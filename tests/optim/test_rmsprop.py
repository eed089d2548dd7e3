"""RMSprop against torch.optim.RMSprop: 20-step trajectories for every option combination."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.optim  # noqa: F401
from tests.optim._problem import compare_with_torch, trajectory

CASES = [
    dict(lr=0.01),
    dict(lr=0.01, momentum=0.9),
    dict(lr=0.01, centered=True),
    dict(lr=0.01, centered=True, momentum=0.5),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.005, maximize=True),
    dict(lr=0.01, alpha=0.9, eps=1e-2),
    dict(lr=0.01, weight_decay=0.1, momentum=0.5, centered=True, maximize=True),
    dict(lr=0.01, groups=[([0], dict(lr=0.02, centered=True)), ([1, 2], dict(momentum=0.9))]),
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_matches_torch_float64(kwargs):
    compare_with_torch("RMSprop", np.float64, **kwargs)


@pytest.mark.parametrize("kwargs", [CASES[0], CASES[3]])
def test_matches_torch_float32(kwargs):
    compare_with_torch("RMSprop", np.float32, **kwargs)


def test_options_change_the_trajectory():
    plain = trajectory(rg, "RMSprop", 10, lr=0.01)[0][-1][0]
    for extra in (dict(momentum=0.9), dict(centered=True), dict(alpha=0.5), dict(eps=0.5),
                  dict(weight_decay=0.5), dict(maximize=True)):
        other = trajectory(rg, "RMSprop", 10, lr=0.01, **extra)[0][-1][0]
        assert np.abs(other - plain).max() > 1e-5, extra


def test_defaults_match_torch():
    mine = rg.optim.RMSprop([rg.zeros(2, requires_grad=True)]).defaults
    theirs = torch.optim.RMSprop([torch.zeros(2, requires_grad=True)]).defaults
    assert mine == {k: theirs[k] for k in mine}


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.01), "RMSprop: Invalid learning rate: -0.01"),
    (dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    (dict(momentum=-0.1), "Invalid momentum value: -0.1"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(alpha=-0.5), "Invalid alpha value: -0.5"),
])
def test_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rg.optim.RMSprop([rg.zeros(2, requires_grad=True)], **kwargs)
