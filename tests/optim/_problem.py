"""The small training problem the optimizer tests run in retrograd and in PyTorch.

Three parameters: W (3, 4) and b (4,) get gradients from
    loss = 0.5 * sum((W - C)^2) + sum(tanh(x @ W + b))       x: (5, 3), C: (3, 4)
and ``frozen`` (2,) never gets one (its .grad stays None, so optimizers must skip it).
The same code builds the loss in both frameworks; ``trajectory`` records the parameters after
every step.
"""

import numpy as np
import torch

import retrograd as rg
import retrograd.optim  # noqa: F401 - until retrograd/__init__ imports it

__all__ = ["initial_arrays", "trajectory", "make_optimizer", "assert_trajectories_close",
           "TOLERANCES"]

TOLERANCES = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}


def initial_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "W": rng.standard_normal((3, 4)),
        "b": rng.standard_normal(4),
        "frozen": rng.standard_normal(2),
        "x": rng.standard_normal((5, 3)),
        "C": rng.standard_normal((3, 4)),
    }


def _optim_module(lib):
    return rg.optim if lib is rg else torch.optim


def make_optimizer(lib, params, name, groups=None, **kwargs):
    """``lib.optim.<name>`` on ``params``; ``groups`` is a list of (param indices, options)
    for several parameter groups."""
    cls = getattr(_optim_module(lib), name)
    if groups is None:
        return cls(params, **kwargs)
    return cls([{"params": [params[i] for i in idx], **opts} for idx, opts in groups], **kwargs)


def make_params(lib, arrays, dtype):
    return [lib.tensor(arrays[k].astype(dtype), requires_grad=True) for k in ("W", "b", "frozen")]


def loss_fn(lib, params, arrays, dtype):
    x, c = (lib.tensor(arrays[k].astype(dtype)) for k in ("x", "C"))
    w, b, _ = params
    return 0.5 * ((w - c) ** 2).sum() + (x @ w + b).tanh().sum()


def trajectory(lib, name, steps=20, dtype=np.float64, groups=None, params=None, opt=None,
               arrays=None, **kwargs):
    """Run ``steps`` optimizer steps; returns (list of [W, b, frozen] arrays after each
    step, the optimizer, the parameters). Pass ``params`` and ``opt`` to continue a run."""
    arrays = initial_arrays() if arrays is None else arrays
    if params is None:
        params = make_params(lib, arrays, dtype)
    if opt is None:
        opt = make_optimizer(lib, params, name, groups, **kwargs)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(lib, params, arrays, dtype).backward()
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out, opt, params


def assert_trajectories_close(rg_traj, torch_traj, dtype):
    tol = TOLERANCES[dtype]
    assert len(rg_traj) == len(torch_traj)
    for step, (mine, theirs) in enumerate(zip(rg_traj, torch_traj)):
        for name, a, b in zip(("W", "b", "frozen"), mine, theirs):
            assert a.dtype == b.dtype == dtype
            np.testing.assert_allclose(a, b, **tol, err_msg=f"{name} after step {step + 1}")


def compare_with_torch(name, dtype=np.float64, steps=20, groups=None, **kwargs):
    """Run the problem in both frameworks and compare trajectories and final states."""
    mine, rg_opt, rg_params = trajectory(rg, name, steps, dtype, groups, **kwargs)
    theirs, t_opt, t_params = trajectory(torch, name, steps, dtype, groups, **kwargs)
    assert_trajectories_close(mine, theirs, dtype)
    arrays = initial_arrays()
    # the run must move W and b, and leave the parameter without gradient alone
    assert np.abs(mine[-1][0] - arrays["W"]).max() > 1e-3
    assert np.abs(mine[-1][1] - arrays["b"]).max() > 1e-3
    np.testing.assert_array_equal(mine[-1][2], arrays["frozen"].astype(dtype))
    # no state for the parameter without gradient, except where torch makes it up front
    assert (rg_params[2] in rg_opt.state) == (t_params[2] in t_opt.state)
    for p, tp in zip(rg_params, t_params):
        state, t_state = rg_opt.state.get(p, {}), t_opt.state.get(tp, {})
        assert sorted(state) == sorted(t_state)
        for key in state:
            assert state[key].dtype == (rg.float32 if key == "step" else rg_params[0].dtype)
            np.testing.assert_allclose(state[key].numpy(), t_state[key].numpy(),
                                       **TOLERANCES[dtype], err_msg=key)
    return mine
