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


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "LambdaLR", "LinearLR",
                                  "SequentialLR-warmup-cosine"])
def test_state_dict_keys_match_torch(name):
    _, mine, _ = _lrs(rg, SCHEDULERS[name], 3)
    _, theirs, _ = _lrs(torch, SCHEDULERS[name], 3)
    assert set(mine.state_dict()) <= set(theirs.state_dict())


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
    (lambda o: rg_sched.StepLR("not an optimizer", 2), TypeError, "StepLR: expected an Optimizer"),
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
