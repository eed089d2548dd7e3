"""LBFGS against torch.optim.LBFGS: iterates, evaluation counts and state on a Rosenbrock
function spread over two parameters (plus one that never gets a gradient)."""

import pickle

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.optim  # noqa: F401
from retrograd.optim.lbfgs import _cubic_interpolate

TOLERANCES = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-4, atol=2e-5)}


class Problem:
    """The Rosenbrock function of z = (a, b.flatten()), a: (3,), b: (2, 2), in one framework;
    ``frozen`` is given to the optimizer but not used by the loss (its .grad stays None)."""

    def __init__(self, lib, dtype=np.float64, seed=0, **options):
        rng = np.random.default_rng(seed)
        self.lib = lib
        self.a = lib.tensor(rng.uniform(-1.5, 1.5, 3).astype(dtype), requires_grad=True)
        self.b = lib.tensor(rng.uniform(-1.5, 1.5, (2, 2)).astype(dtype), requires_grad=True)
        self.frozen = lib.tensor(np.ones(2, dtype), requires_grad=True)
        self.params = [self.a, self.frozen, self.b]
        self.opt = (rg.optim if lib is rg else torch.optim).LBFGS(self.params, **options)
        self.calls = 0

    def closure(self):
        self.calls += 1
        self.opt.zero_grad()
        z = self.lib.cat([self.a, self.b.reshape(-1)])
        loss = (100 * (z[1:] - z[:-1] ** 2) ** 2 + (1 - z[:-1]) ** 2).sum()
        loss.backward()
        return loss

    def run(self, steps):
        """[(loss returned, a, b, frozen)] after each step()."""
        out = []
        for _ in range(steps):
            loss = self.opt.step(self.closure)
            out.append((loss.item(),) + tuple(p.detach().numpy().copy()
                                               for p in (self.a, self.b, self.frozen)))
        return out

    @property
    def state(self):
        return self.opt.state[self.params[0]]


CASES = [
    dict(),
    dict(line_search_fn="strong_wolfe"),
    dict(lr=0.5, max_iter=5, history_size=3),
    dict(line_search_fn="strong_wolfe", history_size=2, max_iter=7),
    dict(lr=0.1, max_iter=50, line_search_fn="strong_wolfe"),
    dict(max_iter=30, max_eval=12, line_search_fn="strong_wolfe"),
    dict(tolerance_change=1e-3, tolerance_grad=1e-2, line_search_fn="strong_wolfe"),
    dict(lr=0.02, max_iter=10, history_size=1),
]
STEPS = 2  # the fixed-step runs on Rosenbrock amplify rounding ~100x a step


def assert_runs_equal(mine, theirs, dtype):
    assert len(mine) == len(theirs)
    for step, (a, b) in enumerate(zip(mine, theirs)):
        for name, x, y in zip(("loss", "a", "b", "frozen"), a, b):
            np.testing.assert_allclose(x, y, **TOLERANCES[dtype], err_msg=f"{name}, step {step}")
            assert np.asarray(x).dtype == np.asarray(y).dtype or name == "loss"


def compare(dtype, steps=STEPS, **options):
    mine, theirs = Problem(rg, dtype, **options), Problem(torch, dtype, **options)
    mine_run, theirs_run = mine.run(steps), theirs.run(steps)
    assert_runs_equal(mine_run, theirs_run, dtype)
    assert mine.calls == theirs.calls > steps
    for key in ("func_evals", "n_iter"):
        assert mine.state[key] == theirs.state[key], key
    assert sorted(mine.state) == sorted(theirs.state)
    return mine, theirs, mine_run


@pytest.mark.parametrize("options", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items())
                         or "defaults")
def test_matches_torch_float64(options):
    mine, theirs, run = compare(np.float64, **options)
    assert np.abs(run[-1][1] - run[0][1]).max() > 1e-4 or run[-1][0] < 1e-8  # it moves
    np.testing.assert_array_equal(run[-1][3], [1.0, 1.0])  # never got a gradient
    for key in ("d", "prev_flat_grad"):
        np.testing.assert_allclose(mine.state[key].numpy(), theirs.state[key].numpy(),
                                   rtol=1e-8, atol=1e-10)
    assert len(mine.state["old_dirs"]) == len(theirs.state["old_dirs"])
    assert len(mine.state["al"]) == len(theirs.state["al"]) == mine.opt.defaults["history_size"]


@pytest.mark.parametrize("options", [CASES[1], CASES[2], CASES[3]])
def test_matches_torch_float32(options):
    compare(np.float32, steps=2, **options)


def test_strong_wolfe_converges_to_the_minimum():
    problem = Problem(rg, line_search_fn="strong_wolfe", max_iter=100)
    problem.run(2)
    np.testing.assert_allclose(problem.a.detach().numpy(), 1.0, atol=1e-4)
    np.testing.assert_allclose(problem.b.detach().numpy(), 1.0, atol=1e-4)


def test_a_converged_start_returns_after_one_evaluation():
    problem = Problem(rg, tolerance_grad=1e9)
    before = problem.a.detach().numpy().copy()
    problem.run(1)
    assert problem.calls == 1 and problem.state["func_evals"] == 1
    np.testing.assert_array_equal(problem.a.detach().numpy(), before)


@pytest.mark.parametrize("options", [CASES[1], CASES[2]])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_state_dict_resume_continues_identically(options, dtype):
    straight = Problem(rg, dtype, **options).run(4)
    first = Problem(rg, dtype, **options)
    head = first.run(2)
    saved = pickle.loads(pickle.dumps(first.opt.state_dict()))
    resumed = Problem(rg, dtype, **options)
    with rg.no_grad():
        for p, q in zip(resumed.params, first.params):
            p.copy_(q)
    resumed.opt.load_state_dict(saved)
    assert resumed.state["old_dirs"][0] is not first.state["old_dirs"][0]
    tail = resumed.run(2)
    for a, b in zip(straight, head + tail):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_state_dict_through_retrograd_save(tmp_path):
    first = Problem(rg, line_search_fn="strong_wolfe", max_iter=4)
    first.run(1)
    rg.save(first.opt.state_dict(), tmp_path / "lbfgs.pt")
    loaded = rg.load(tmp_path / "lbfgs.pt")
    state = loaded["state"][0]
    assert sorted(state) == sorted(first.state)
    np.testing.assert_array_equal(state["d"].numpy(), first.state["d"].numpy())


def test_state_dict_layout_matches_torch():
    mine, theirs, _ = compare(np.float64, steps=1, line_search_fn="strong_wolfe", max_iter=4)
    sd, tsd = mine.opt.state_dict(), theirs.opt.state_dict()
    assert list(sd["state"]) == list(tsd["state"]) == [0]
    assert sd["param_groups"] == tsd["param_groups"]


def test_defaults_match_torch():
    for options in ({}, dict(max_iter=7), dict(max_iter=7, max_eval=3)):
        mine = rg.optim.LBFGS([rg.zeros(2, requires_grad=True)], **options).defaults
        theirs = torch.optim.LBFGS([torch.zeros(2, requires_grad=True)], **options).defaults
        assert mine == theirs


def test_cubic_interpolate_finds_the_minimizer_of_a_cubic():
    # f(x) = (x - 1)^3 - 3 (x - 1) has its local minimum at x = 2
    def f(x):
        return (x - 1) ** 3 - 3 * (x - 1)

    def df(x):
        return 3 * (x - 1) ** 2 - 3
    for x1, x2 in ((0.5, 3.0), (3.0, 0.5), (1.5, 2.5)):
        assert _cubic_interpolate(x1, f(x1), df(x1), x2, f(x2), df(x2)) == pytest.approx(2.0)
    assert _cubic_interpolate(0.5, f(0.5), df(0.5), 3.0, f(3.0), df(3.0), (0.0, 1.5)) == 1.5
    # no real minimizer (d1 = 0, d1^2 - g1 g2 < 0): the middle of the bounds
    assert _cubic_interpolate(0.0, 0.0, 1.0, 1.0, 2 / 3, 1.0) == 0.5


def test_errors():
    w = rg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        rg.optim.LBFGS([{"params": [w]}, {"params": [rg.zeros(1, requires_grad=True)]}])
    opt = rg.optim.LBFGS([w])
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        opt.add_param_group({"params": [rg.zeros(1, requires_grad=True)]})
    with pytest.raises(TypeError, match=r"LBFGS.step\(\) needs a closure"):
        opt.step()
    for options, match in [(dict(lr=-1), "LBFGS: Invalid learning rate: -1"),
                           (dict(max_iter=0), "LBFGS: Invalid max_iter: 0"),
                           (dict(history_size=2.5), "LBFGS: Invalid history_size: 2.5"),
                           (dict(max_eval=-3), "LBFGS: Invalid max_eval: -3"),
                           (dict(tolerance_grad=-1.0), "LBFGS: Invalid tolerance_grad: -1.0"),
                           (dict(line_search_fn="armijo"), "only 'strong_wolfe' is supported")]:
        with pytest.raises(ValueError, match=match):
            rg.optim.LBFGS([w], **options)


def test_step_bumps_versions_and_keeps_leaves():
    problem = Problem(rg, max_iter=3)
    version = problem.a._version[0]
    problem.run(1)
    assert problem.a._version[0] > version and problem.a.is_leaf and problem.a.grad_fn is None
