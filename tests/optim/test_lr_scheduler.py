"""Learning-rate schedulers against torch.optim.lr_scheduler: lr values over 30 steps."""

import io
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
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.9 if e % 3 else 1.05),
    "MultiplicativeLR-per-group": lambda m, o: m.MultiplicativeLR(
        o, [lambda e: 0.95, lambda e: 1.0 + 0.01 * e]),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=8),
    "ConstantLR-default": lambda m, o: m.ConstantLR(o),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=20, power=2.0),
    "PolynomialLR-default": lambda m, o: m.PolynomialLR(o),
    "PolynomialLR-sqrt": lambda m, o: m.PolynomialLR(o, total_iters=25, power=0.5),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler([
        m.ConstantLR(o, factor=0.1, total_iters=4), m.ExponentialLR(o, gamma=0.9)]),
    "ChainedScheduler-with-optimizer": lambda m, o: m.ChainedScheduler([
        m.LinearLR(o, start_factor=0.2, total_iters=6), m.StepLR(o, 5, gamma=0.5),
        m.CosineAnnealingLR(o, T_max=12)], optimizer=o),
    "SequentialLR-of-chained": lambda m, o: _sequential(m, o, [
        lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=3),
        lambda m, o: m.PolynomialLR(o, total_iters=10, power=1.5)], [6]),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=7),
    "CosineAnnealingWarmRestarts-T_mult": lambda m, o: m.CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=0.002),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=30),
    "OneCycleLR-linear": lambda m, o: m.OneCycleLR(
        o, max_lr=0.8, epochs=4, steps_per_epoch=9, pct_start=0.25, anneal_strategy="linear",
        div_factor=10.0, final_div_factor=100.0, base_momentum=[0.8, 0.7],
        max_momentum=0.99),
    "OneCycleLR-three-phase": lambda m, o: m.OneCycleLR(
        o, max_lr=2.0, total_steps=31, three_phase=True, pct_start=0.35),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(
        o, max_lr=0.4, total_steps=40, cycle_momentum=False, anneal_strategy="linear"),
    "CyclicLR": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=4),
    "CyclicLR-triangular2": lambda m, o: m.CyclicLR(
        o, [0.01, 0.02], [0.1, 0.3], step_size_up=3, step_size_down=5, mode="triangular2"),
    "CyclicLR-exp_range": lambda m, o: m.CyclicLR(
        o, 0.01, 0.2, step_size_up=5, mode="exp_range", gamma=0.97, base_momentum=0.7,
        max_momentum=[0.95, 0.9]),
    "CyclicLR-scale_fn": lambda m, o: m.CyclicLR(
        o, 0.05, 0.5, step_size_up=2, scale_fn=lambda x: 1 / (x + 1), scale_mode="iterations",
        cycle_momentum=False),
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
    buffer = io.BytesIO()  # through a checkpoint file, as a resumed run gets them
    rg.save({"scheduler": sched.state_dict(), "optimizer": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = rg.load(buffer)
    sched_state, opt_state = saved["scheduler"], saved["optimizer"]
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
    assert "_last_lr" in mine and ("last_epoch" in mine or "_schedulers" in mine)
    if "_schedulers" in theirs:  # SequentialLR, ChainedScheduler: their children have it
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


# ---------------------------------------------------------------------- momentum cycling
def _adam(lib):
    tensor = rg.zeros if lib is rg else torch.zeros
    optim = rg.optim if lib is rg else torch.optim
    return optim.Adam([{"params": [tensor(2, requires_grad=True)], "lr": lr} for lr in LRS],
                      betas=(0.9, 0.99))


@pytest.mark.parametrize("name", ["OneCycleLR", "OneCycleLR-linear", "OneCycleLR-three-phase",
                                  "CyclicLR", "CyclicLR-triangular2", "CyclicLR-exp_range"])
@pytest.mark.parametrize("make_optimizer", [_optimizer, _adam], ids=["SGD", "Adam"])
def test_momentum_cycles_as_in_torch(name, make_optimizer):
    def run(lib):
        opt = make_optimizer(lib)
        sched = SCHEDULERS[name](rg_sched if lib is rg else torch_sched, opt)
        out = []
        for _ in range(30):
            out.append([(g["lr"],) + (tuple(g["betas"]) if "betas" in g else (g["momentum"],))
                        for g in opt.param_groups])
            opt.step()
            sched.step()
        return np.array(out)
    mine, theirs = run(rg), run(torch)
    np.testing.assert_allclose(mine, theirs, rtol=1e-15, atol=0)
    assert np.ptp(mine[:, 0, 1]) > 0.05  # momentum (or beta1) moves
    if make_optimizer is _adam:
        np.testing.assert_array_equal(mine[:, :, 2], 0.99)  # beta2 untouched


def test_one_cycle_past_total_steps_is_an_error():
    opt = _optimizer(rg)
    sched = rg_sched.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="OneCycleLR: Tried to step 4 times. The specified "
                                         "number of total steps is 3"):
        sched.step()


# ---------------------------------------------------------------------- warm restarts
@pytest.mark.parametrize("t_0, t_mult", [(5, 1), (3, 2), (2, 3)])
def test_warm_restarts_fractional_epochs_equal_torch(t_0, t_mult):
    """The usual per-batch call, step(epoch + i / iters), including epochs jumped over."""
    epochs = [e + i / 7 for e in range(20) for i in range(7)] + [3.5, 0.25, 44.0, 12]

    def run(lib, m):
        opt = _optimizer(lib)
        sched = m.CosineAnnealingWarmRestarts(opt, T_0=t_0, T_mult=t_mult, eta_min=1e-3)
        out = []
        for epoch in epochs:
            sched.step(epoch)
            out.append(sched.get_last_lr() + [sched.T_cur, sched.T_i, sched.last_epoch])
        return np.array(out)
    mine, theirs = run(rg, rg_sched), run(torch, torch_sched)
    np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-15)
    assert np.ptp(mine[:, 0]) > 0.05


def test_warm_restarts_negative_epoch_is_an_error():
    sched = rg_sched.CosineAnnealingWarmRestarts(_optimizer(rg), T_0=3)
    with pytest.raises(ValueError, match="Expected non-negative epoch, but got -1"):
        sched.step(-1)


# ---------------------------------------------------------------------- ReduceLROnPlateau
METRICS = [5.0, 4.0, 4.0, 3.9999, 4.2, 4.1, 3.0, 3.0, 3.0, 3.0, 3.0, 2.99, 2.5, 2.5, 2.6, 2.7,
           2.8, 2.9, 2.1, 2.1, 2.1, 2.1, 2.1, 2.1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("kwargs", [
    dict(patience=1),
    dict(patience=2, factor=0.5, cooldown=2),
    dict(patience=0, factor=0.3, min_lr=0.01),
    dict(patience=0, factor=0.5, min_lr=[0.02, 0.001], threshold=0.1),
    dict(mode="max", patience=1, factor=0.5),
    dict(threshold_mode="abs", threshold=0.05, patience=1, factor=0.7),
    dict(mode="max", threshold_mode="abs", threshold=0.2, patience=0),
    dict(patience=0, factor=0.9, eps=0.006),
    dict(),
])
def test_reduce_on_plateau_equals_torch(kwargs):
    def run(lib, m):
        opt = _optimizer(lib)
        sched = m.ReduceLROnPlateau(opt, **kwargs)
        out = []
        for metric in METRICS:
            opt.step()
            sched.step(lib.tensor(metric) if metric == 3.0 else metric)
            out.append(sched.get_last_lr() + [sched.num_bad_epochs, sched.cooldown_counter])
        return np.array(out), sched
    (mine, sched), (theirs, _) = run(rg, rg_sched), run(torch, torch_sched)
    np.testing.assert_allclose(mine, theirs, rtol=1e-15, atol=0)
    resumed = rg_sched.ReduceLROnPlateau(_optimizer(rg), **kwargs)
    resumed.load_state_dict(pickle.loads(pickle.dumps(sched.state_dict())))
    assert resumed.best == sched.best and resumed.last_epoch == len(METRICS)


def test_reduce_on_plateau_resumes_identically():
    def make(opt):
        return rg_sched.ReduceLROnPlateau(opt, patience=1, factor=0.5, cooldown=1)
    opt = _optimizer(rg)
    sched = make(opt)
    straight = []
    for metric in METRICS:
        sched.step(metric)
        straight.append(sched.get_last_lr())
    opt, half = _optimizer(rg), len(METRICS) // 2
    sched = make(opt)
    for metric in METRICS[:half]:
        sched.step(metric)
    opt_state, sched_state = opt.state_dict(), pickle.loads(pickle.dumps(sched.state_dict()))
    new_opt = _optimizer(rg)
    new_sched = make(new_opt)
    new_opt.load_state_dict(opt_state)
    new_sched.load_state_dict(sched_state)
    rest = []
    for metric in METRICS[half:]:
        new_sched.step(metric)
        rest.append(new_sched.get_last_lr())
    assert straight[half:] == rest and len(set(map(tuple, rest))) > 1


def test_reduce_on_plateau_state_dict_keys_match_torch():
    mine = rg_sched.ReduceLROnPlateau(_optimizer(rg)).state_dict()
    theirs = torch_sched.ReduceLROnPlateau(_optimizer(torch)).state_dict()
    assert set(mine) == set(theirs)


def test_reduce_on_plateau_errors():
    opt = _optimizer(rg)
    for kwargs, match in [(dict(factor=1.0), "ReduceLROnPlateau: Factor should be < 1.0"),
                          (dict(mode="lowest"), "mode 'lowest' is unknown"),
                          (dict(threshold_mode="pct"), "threshold mode 'pct' is unknown"),
                          (dict(min_lr=[0.1]), "expected 2 min_lrs"),
                          (dict(patience=-1), "patience must be a non-negative int")]:
        with pytest.raises(ValueError, match=match):
            rg_sched.ReduceLROnPlateau(opt, **kwargs)
    with pytest.raises(TypeError, match="ReduceLROnPlateau.step: the metric must be a number "
                                        "or a one-element Tensor, got a str"):
        rg_sched.ReduceLROnPlateau(opt).step("low")
    sched = rg_sched.ReduceLROnPlateau(opt, min_lr=[0.0, 0.0], patience=0)
    opt.add_param_group({"params": [rg.zeros(1, requires_grad=True)], "lr": 0.1})
    sched.step(1.0)
    with pytest.raises(RuntimeError, match="3 parameter groups but 2 min_lrs"):
        sched.step(2.0)


# ---------------------------------------------------------------------- more errors, epochs
@pytest.mark.parametrize("make, error, match", [
    (lambda o: rg_sched.ConstantLR(o, factor=1.5), ValueError,
     "ConstantLR: Constant multiplicative factor expected to be between 0 and 1"),
    (lambda o: rg_sched.PolynomialLR(o, total_iters=0), ValueError,
     "PolynomialLR: total_iters must be a positive int"),
    (lambda o: rg_sched.MultiplicativeLR(o, 0.9), TypeError, "lr_lambda should be a function"),
    (lambda o: rg_sched.ChainedScheduler([]), ValueError, "at least one scheduler"),
    (lambda o: rg_sched.ChainedScheduler([rg_sched.ReduceLROnPlateau(o)]), ValueError,
     "does not support ReduceLROnPlateau"),
    (lambda o: rg_sched.ChainedScheduler([rg_sched.StepLR(o, 2),
                                          rg_sched.StepLR(_optimizer(rg), 2)]), ValueError,
     "schedulers\\[1\\] \\(StepLR\\) belongs to another one"),
    (lambda o: rg_sched.CosineAnnealingWarmRestarts(o, T_0=0), ValueError,
     "Expected positive integer T_0, but got 0"),
    (lambda o: rg_sched.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=1.5), ValueError,
     "Expected integer T_mult >= 1, but got 1.5"),
    (lambda o: rg_sched.OneCycleLR(o, max_lr=1.0), ValueError,
     "You must define either total_steps OR \\(epochs AND steps_per_epoch\\)"),
    (lambda o: rg_sched.OneCycleLR(o, max_lr=1.0, total_steps=0), ValueError,
     "Expected positive integer total_steps, but got 0"),
    (lambda o: rg_sched.OneCycleLR(o, max_lr=1.0, epochs=2, steps_per_epoch=-1), ValueError,
     "Expected positive integer steps_per_epoch, but got -1"),
    (lambda o: rg_sched.OneCycleLR(o, max_lr=1.0, total_steps=9, pct_start=1.5), ValueError,
     "Expected float between 0 and 1 pct_start, but got 1.5"),
    (lambda o: rg_sched.OneCycleLR(o, max_lr=1.0, total_steps=9, anneal_strategy="exp"),
     ValueError, "anneal_strategy must be one of 'cos' or 'linear'"),
    (lambda o: rg_sched.OneCycleLR(o, max_lr=[1.0], total_steps=9), ValueError,
     "expected 2 max_lrs"),
    (lambda o: rg_sched.OneCycleLR(rg.optim.Adagrad([rg.zeros(1, requires_grad=True)]),
                                   max_lr=1.0, total_steps=9), ValueError,
     "optimizer must support momentum or beta1 with `cycle_momentum` option enabled "
     "\\(Adagrad has neither"),
    (lambda o: rg_sched.CyclicLR(o, 0.1, 1.0, mode="sawtooth"), ValueError,
     "mode 'sawtooth' is invalid and scale_fn is None"),
    (lambda o: rg_sched.CyclicLR(o, 0.1, 1.0, step_size_up=0), ValueError,
     "step_size_up must be a positive number"),
])
def test_errors_of_the_new_schedulers(make, error, match):
    with pytest.raises(error, match=match):
        make(_optimizer(rg))


def test_step_with_an_epoch_uses_the_closed_form_and_warns_as_torch():
    def run(lib, m):
        opt = _optimizer(lib)
        sched = m.StepLR(opt, step_size=3, gamma=0.5)
        out = []
        for epoch in (4, 9, 2):
            opt.step()
            with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
                sched.step(epoch)
            out.append(sched.get_last_lr())
        return out
    assert run(rg, rg_sched) == run(torch, torch_sched)


def test_multistep_state_survives_retrograd_save(tmp_path):
    opt = _optimizer(rg)
    sched = rg_sched.MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.5)
    rg.save({"sched": sched.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    loaded = rg.load(tmp_path / "ckpt.pt")
    fresh_opt = _optimizer(rg)
    fresh = rg_sched.MultiStepLR(fresh_opt, milestones=[1], gamma=0.5)
    fresh_opt.load_state_dict(loaded["opt"])
    fresh.load_state_dict(loaded["sched"])
    assert fresh.milestones == {2: 1, 5: 2}
    fresh._update_lr(6)  # the closed form reads the milestones as a multiset
    assert fresh.get_last_lr() == [0.1 * 0.125, 0.05 * 0.125]
