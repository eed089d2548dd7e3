"""Adam and AdamW against torch.optim: 20-step trajectories for every option combination."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.optim  # noqa: F401
from tests.optim._problem import compare_with_torch, trajectory


def _ids(k):
    return ",".join(f"{a}={b}" for a, b in k.items())


ADAM_CASES = [
    dict(lr=0.05),
    dict(lr=0.05, amsgrad=True),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, weight_decay=0.1, amsgrad=True),
    dict(lr=0.01, maximize=True),
    dict(lr=0.05, betas=(0.8, 0.9), eps=1e-3),
    dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
    dict(lr=0.02, groups=[([0], dict(lr=0.1, amsgrad=True)), ([1, 2], dict(betas=(0.5, 0.6)))]),
]

ADAMW_CASES = [
    dict(lr=0.05),
    dict(lr=0.05, weight_decay=0.3),
    dict(lr=0.05, weight_decay=0.3, amsgrad=True),
    dict(lr=0.01, weight_decay=0.1, maximize=True),
    dict(lr=0.05, groups=[([0], dict(weight_decay=0.0)), ([1, 2], dict(lr=0.1, weight_decay=0.5))]),
]


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=_ids)
def test_adam_matches_torch_float64(kwargs):
    compare_with_torch("Adam", np.float64, **kwargs)


@pytest.mark.parametrize("kwargs", ADAMW_CASES, ids=_ids)
def test_adamw_matches_torch_float64(kwargs):
    compare_with_torch("AdamW", np.float64, **kwargs)


@pytest.mark.parametrize("name, kwargs", [("Adam", ADAM_CASES[0]), ("Adam", ADAM_CASES[3]),
                                          ("AdamW", ADAMW_CASES[2])])
def test_matches_torch_float32(name, kwargs):
    compare_with_torch(name, np.float32, **kwargs)


def test_adamw_equals_adam_with_decoupled_decay():
    a = trajectory(rg, "AdamW", 10, lr=0.05, weight_decay=0.2)[0]
    b = trajectory(rg, "Adam", 10, lr=0.05, weight_decay=0.2, decoupled_weight_decay=True)[0]
    c = trajectory(rg, "Adam", 10, lr=0.05, weight_decay=0.2)[0]
    np.testing.assert_array_equal(a[-1][0], b[-1][0])
    assert np.abs(a[-1][0] - c[-1][0]).max() > 1e-4  # L2 and decoupled decay differ


def test_options_change_the_trajectory():
    plain = trajectory(rg, "Adam", 10, lr=0.05)[0][-1][0]
    for extra in (dict(amsgrad=True), dict(maximize=True), dict(eps=1e-1),
                  dict(betas=(0.5, 0.999)), dict(betas=(0.9, 0.5))):
        other = trajectory(rg, "Adam", 10, lr=0.05, **extra)[0][-1][0]
        assert np.abs(other - plain).max() > 1e-5, extra


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_defaults_match_torch(name):
    mine = getattr(rg.optim, name)([rg.zeros(2, requires_grad=True)]).defaults
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)]).defaults
    assert mine == {k: theirs[k] for k in mine}


def test_amsgrad_keeps_the_running_max():
    w = rg.tensor([0.0], dtype=rg.float64, requires_grad=True)
    opt = rg.optim.Adam([w], lr=0.1, amsgrad=True, betas=(0.9, 0.5))
    for g in (4.0, 0.0):
        w.grad = rg.tensor([g], dtype=rg.float64)
        opt.step()
    state = opt.state[w]
    np.testing.assert_allclose(state["exp_avg_sq"].numpy(), [4.0])     # 0.5 * 8
    np.testing.assert_allclose(state["max_exp_avg_sq"].numpy(), [8.0])  # step 1: 0.5 * 16
    assert state["step"].item() == 2.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-1e-3), "Adam: Invalid learning rate: -0.001"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(betas=0.9), "betas must be a pair of floats"),
])
def test_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rg.optim.Adam([rg.zeros(2, requires_grad=True)], **kwargs)


def test_adamw_invalid_options_name_adamw():
    with pytest.raises(ValueError, match="AdamW: Invalid learning rate"):
        rg.optim.AdamW([rg.zeros(2, requires_grad=True)], lr=-1.0)


def test_adamw_load_state_dict_keeps_decoupled_decay():
    w = rg.zeros(2, requires_grad=True)
    adam = rg.optim.Adam([w], lr=0.1, weight_decay=0.1)
    adamw = rg.optim.AdamW([rg.zeros(2, requires_grad=True)])
    adamw.load_state_dict(adam.state_dict())
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True
    assert adamw.param_groups[0]["lr"] == 0.1
