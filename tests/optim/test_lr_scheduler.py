"""Learning-rate schedulers against torch.optim.lr_scheduler: lr values over 30 steps."""

import math
import pickle

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.optim import lr_scheduler as rg_sched
from torch.optim import lr_scheduler as torch_sched

LRS = (0.1, 0.05)  # two parameter groups


def _optimizer(lib, lrs=LRS):
    tensor = rg.zeros if lib is rg else torch.zeros
    optim = rg.optim if lib is rg else torch.optim
    groups = [{"params": [tensor(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=1.0, momentum=0.9)


def _sequential(m, o, parts, milestones):
    return m.SequentialLR(o, [make(m, o) for make in parts], milestones=milestones)


SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "StepLR-default-gamma": lambda m, o: m.StepLR(o, 7),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 11], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR-past-T_max": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=30),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e),
    "LambdaLR-per-group": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: e % 4]),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=7),
    "LinearLR-default": lambda m, o: m.LinearLR(o),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=20),
    "SequentialLR-warmup-cosine": lambda m, o: _sequential(m, o, [
        lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=5),
        lambda m, o: m.CosineAnnealingLR(o, T_max=20, eta_min=1e-4)], [5]),
    "SequentialLR-three": lambda m, o: _sequential(m, o, [
        lambda m, o: m.ExponentialLR(o, gamma=0.8),
        lambda m, o: m.StepLR(o, step_size=2, gamma=0.5),
        lambda m, o: m.MultiStepLR(o, milestones=[3, 6], gamma=0.1)], [4, 12]),
}


def _lrs(lib, make, steps=30):
    """get_last_lr() at construction and after each of ``steps`` steps (optimizer first)."""
    opt = _optimizer(lib)
    sched = make(rg_sched if lib is rg else torch_sched, opt)
    out = [sched.get_last_lr()]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == out[-1]
    return np.array(out), sched, opt


@pytest.mark.parametrize("name", SCHEDULERS)
def test_lrs_equal_torch(name):
    mine, _, _ = _lrs(rg, SCHEDULERS[name])
    theirs, _, _ = _lrs(torch, SCHEDULERS[name])
    np.testing.assert_allclose(mine, theirs, rtol=1e-15, atol=0)
    assert np.ptp(mine[:, 0]) > 0.01  # the schedule really moves
    assert mine.dtype == np.float64  # plain Python floats, not arrays


@pytest.mark.parametrize("name", SCHEDULERS)
def test_state_dict_resume_continues_identically(name):
    make = SCHEDULERS[name]
    straight, _, _ = _lrs(rg, make, 30)
    first, sched, opt = _lrs(rg, make, 12)
    sched_state = pickle.loads(pickle.dumps(sched.state_dict()))
    opt_state = pickle.loads(pickle.dumps(opt.state_dict()))
    new_opt = _optimizer(rg, lrs=(1.0, 1.0))
    new_sched = make(rg_sched, new_opt)
    new_opt.load_state_dict(opt_state)
    new_sched.load_state_dict(sched_state)
    rest = []
    for _ in range(18):
        new_opt.step()
        new_sched.step()
        rest.append(new_sched.get_last_lr())
    np.testing.assert_array_equal(straight, np.concatenate([first, rest]))


# The one intended difference from torch's state dicts: torch's schedulers keep a flag,
# _get_lr_called_within_step, True only while their own step() calls get_lr(), so that torch
# can warn when get_lr() is called directly. retrograd gives no such warning and keeps no
# flag; a saved torch state always holds it as False, so leaving it out loses nothing. torch
# sets it on a scheduler whose step() calls get_lr(): every state below has it except
# SequentialLR's own (its step() calls its schedulers' step()).
TORCH_ONLY_KEYS = {"_get_lr_called_within_step"}


def _key_differences(mine, theirs):
    """[(keys only in ours, keys only in torch's)] for a state dict and, for SequentialLR,
    each of its schedulers' state dicts in turn."""
    differences = [(set(mine) - set(theirs), set(theirs) - set(mine))]
    if "_schedulers" in theirs:
        assert len(mine["_schedulers"]) == len(theirs["_schedulers"])
        for a, b in zip(mine["_schedulers"], theirs["_schedulers"]):
            differences += _key_differences(a, b)
    return differences


@pytest.mark.parametrize("name", SCHEDULERS)
def test_state_dict_keys_match_torch(name):
    _, mine, _ = _lrs(rg, SCHEDULERS[name], 3)
    _, theirs, _ = _lrs(torch, SCHEDULERS[name], 3)
    mine, theirs = mine.state_dict(), theirs.state_dict()
    assert {"last_epoch", "_last_lr"} <= set(mine)  # not vacuous: an empty dict fails
    if name.startswith("SequentialLR"):
        children = len(theirs["_schedulers"])
        expected = [(set(), set())] + [(set(), TORCH_ONLY_KEYS)] * children
    else:
        expected = [(set(), TORCH_ONLY_KEYS)]
    assert _key_differences(mine, theirs) == expected
    states = theirs.get("_schedulers", [theirs])
    assert all(state["_get_lr_called_within_step"] is False for state in states)


def test_lambda_state_dict_saves_callable_objects_only():
    class Factor:
        def __init__(self):
            self.scale = 0.5

        def __call__(self, epoch):
            return self.scale ** epoch

    opt = _optimizer(rg)
    sched = rg_sched.LambdaLR(opt, [Factor(), lambda e: 1.0])
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"scale": 0.5}, None]
    other = Factor()
    other.scale = 0.1
    fresh = rg_sched.LambdaLR(_optimizer(rg), [other, lambda e: 1.0])
    fresh.load_state_dict(state)
    assert other.scale == 0.5


def test_chainable_schedulers_compose():
    # two chainable schedulers on one optimizer multiply their factors, as in PyTorch
    def run(m, lib):
        opt = _optimizer(lib)
        a, b = m.ExponentialLR(opt, gamma=0.9), m.StepLR(opt, step_size=2, gamma=0.5)
        out = []
        for _ in range(6):
            opt.step()
            a.step()
            b.step()
            out.append(b.get_last_lr())
        return out
    np.testing.assert_allclose(run(rg_sched, rg), run(torch_sched, torch), rtol=1e-15)


# ---------------------------------------------------------------------- LinearWarmup
@pytest.mark.parametrize("start_factor, warmup, total, eta_min", [
    (1.0 / 3, 5, 30, 0.0),
    (0.1, 4, 40, 1e-3),
    (1.0, 1, 20, 0.0),
    (0.01, 10, 11, 1e-4),
])
def test_linear_warmup_equals_torch_sequential_linear_cosine(start_factor, warmup, total,
                                                              eta_min):
    mine, _, _ = _lrs(rg, lambda m, o: m.LinearWarmup(
        o, warmup, start_factor=start_factor, total_steps=total, eta_min=eta_min), total)
    theirs, _, _ = _lrs(torch, lambda m, o: m.SequentialLR(o, [
        m.LinearLR(o, start_factor=start_factor, total_iters=warmup),
        m.CosineAnnealingLR(o, T_max=total - warmup, eta_min=eta_min)], milestones=[warmup]),
        total)
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-17)
    np.testing.assert_allclose(mine[-1], [eta_min, eta_min], rtol=1e-12, atol=1e-17)


def test_linear_warmup_without_decay_equals_torch_linear_lr():
    mine, _, _ = _lrs(rg, lambda m, o: m.LinearWarmup(o, 6, start_factor=0.2))
    theirs, _, _ = _lrs(torch, lambda m, o: m.LinearLR(o, start_factor=0.2, total_iters=6))
    np.testing.assert_allclose(mine, theirs, rtol=1e-12)


def test_linear_warmup_holds_eta_min_after_total_steps():
    lrs, _, _ = _lrs(rg, lambda m, o: m.LinearWarmup(o, 2, total_steps=10, eta_min=1e-3), 30)
    np.testing.assert_array_equal(lrs[10:], 1e-3)


def test_linear_warmup_from_zero_and_without_warmup():
    lrs, _, _ = _lrs(rg, lambda m, o: m.LinearWarmup(o, 4, start_factor=0.0), 6)
    np.testing.assert_allclose(lrs[:, 0], [0.0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    lrs, _, _ = _lrs(rg, lambda m, o: m.LinearWarmup(o, 0, total_steps=4), 4)
    expected = [0.1 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(lrs[:, 0], expected, rtol=1e-15)


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("make, error, match", [
    (lambda o: rg_sched.StepLR(o, step_size=0), ValueError,
     "StepLR: step_size must be a positive int"),
    (lambda o: rg_sched.CosineAnnealingLR(o, T_max=0), ValueError,
     "T_max must be a positive int"),
    (lambda o: rg_sched.LinearLR(o, start_factor=0.0), ValueError,
     "Starting multiplicative factor"),
    (lambda o: rg_sched.LinearLR(o, end_factor=1.5), ValueError, "Ending multiplicative factor"),
    (lambda o: rg_sched.LambdaLR(o, [lambda e: 1.0]), ValueError,
     "LambdaLR: expected 2 lr_lambdas \\(one per parameter group\\), but got 1"),
    (lambda o: rg_sched.LambdaLR(o, 0.5), TypeError, "lr_lambda should be a function"),
    (lambda o: rg_sched.StepLR(o, 2, last_epoch=4), KeyError, "'initial_lr' is not specified"),
    (lambda o: rg_sched.SequentialLR(o, [rg_sched.StepLR(o, 2)], milestones=[3]), ValueError,
     "one milestone fewer than schedulers"),
    (lambda o: rg_sched.SequentialLR(o, [], milestones=[]), ValueError, "at least one scheduler"),
    (lambda o: rg_sched.SequentialLR(o, [rg_sched.StepLR(_optimizer(rg), 2)], milestones=[]),
     ValueError, "belong to the same optimizer"),
    (lambda o: rg_sched.LinearWarmup(o, 5, total_steps=5), ValueError,
     "total_steps \\(5\\) must be greater than warmup_steps \\(5\\)"),
    (lambda o: rg_sched.LinearWarmup(o, -1), ValueError, "warmup_steps must be a non-negative int"),
    (lambda o: rg_sched.LinearWarmup(o, 2, start_factor=1.5), ValueError,
     "LinearWarmup: start_factor has to be between 0 and 1, but got 1.5"),
    (lambda o: rg_sched.StepLR("not an optimizer", 2), TypeError,
     "StepLR: optimizer must be an Optimizer, got a str"),
])
def test_errors(make, error, match):
    with pytest.raises(error, match=match):
        make(_optimizer(rg))


@pytest.mark.parametrize("name", ["StepLR", "ExponentialLR", "CosineAnnealingLR-past-T_max",
                                  "LinearLR", "MultiStepLR"])
def test_resuming_with_last_epoch_equals_torch(name):
    def run(lib, m):
        opt = _optimizer(lib)
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"] * 2
        sched = SCHEDULERS[name](_WithLastEpoch(m, 6), opt)
        out = [sched.get_last_lr()]
        for _ in range(10):
            opt.step()
            sched.step()
            out.append(sched.get_last_lr())
        return out
    np.testing.assert_allclose(run(rg, rg_sched), run(torch, torch_sched), rtol=1e-15)


class _WithLastEpoch:
    """A scheduler module whose classes are built with last_epoch given."""

    def __init__(self, module, last_epoch):
        self.module, self.last_epoch = module, last_epoch

    def __getattr__(self, name):
        cls = getattr(self.module, name)
        return lambda *args, **kwargs: cls(*args, last_epoch=self.last_epoch, **kwargs)


# every scheduler, given the model or its parameters instead of the optimizer built on them
# (PyTorch: "Linear is not an Optimizer"; LambdaLR and SequentialLR used to fail on an attribute)
NOT_AN_OPTIMIZER = [
    (lambda x: rg_sched.StepLR(x, 2), "StepLR"),
    (lambda x: rg_sched.LambdaLR(x, lambda epoch: 1.0), "LambdaLR"),
    (lambda x: rg_sched.MultiStepLR(x, [1]), "MultiStepLR"),
    (lambda x: rg_sched.ExponentialLR(x, 0.5), "ExponentialLR"),
    (lambda x: rg_sched.LinearLR(x), "LinearLR"),
    (lambda x: rg_sched.CosineAnnealingLR(x, 3), "CosineAnnealingLR"),
    (lambda x: rg_sched.SequentialLR(x, [rg_sched.StepLR(_optimizer(rg), 2)], []),
     "SequentialLR"),
    (lambda x: rg_sched.LinearWarmup(x, 2), "LinearWarmup"),
]


@pytest.mark.parametrize("make, name", NOT_AN_OPTIMIZER, ids=[n for _, n in NOT_AN_OPTIMIZER])
@pytest.mark.parametrize("given, kind", [
    (lambda: rg.nn.Linear(2, 2), "a Linear module"),
    (lambda: list(rg.nn.Linear(2, 2).parameters()), "a list"),
])
def test_a_model_instead_of_an_optimizer_is_a_clear_error(make, name, given, kind):
    with pytest.raises(TypeError) as info:
        make(given())
    assert str(info.value) == (f"{name}: optimizer must be an Optimizer, got {kind}; build the "
                               f"optimizer first, e.g. optim.SGD(model.parameters(), lr=0.1), "
                               f"and pass it")
