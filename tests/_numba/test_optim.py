"""The compiled optimizer updates (retrograd/_numba/optim.py) give the NumPy updates'
results bit for bit, on the serial and the parallel paths, and are the ones that run."""

import numpy as np
import pytest

import retrograd as rg
from retrograd import _fast
from retrograd.optim.optimizer import compiled_update

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed: "
                                    "pip install -e '.[test,fast]' installs it")

CONFIGS = [
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, maximize=True, weight_decay=0.1)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.3)),
    ("AdamW", dict(lr=3e-3, betas=(0.8, 0.95), eps=1e-6, amsgrad=True)),
    ("RMSprop", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, centered=True, momentum=0.9, weight_decay=1e-2)),
    ("RMSprop", dict(lr=1e-3, alpha=0.9, momentum=0.5, maximize=True)),
]
SIZES = [(7,), (33, 5), (600, 300)]   # the last is above PARALLEL_MIN: the parallel driver


def _train(name, options, dtype, shapes, compiled, monkeypatch, steps=4):
    """The parameters and state after ``steps`` steps with fixed random gradients."""
    if not compiled:
        monkeypatch.setitem(_fast._MODULES, "optim", None)
    rng = np.random.default_rng(0)
    params = [rg.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
              for s in shapes]
    opt = getattr(rg.optim, name)(params, **options)
    for _ in range(steps):
        for p in params:
            p.grad = rg.tensor(rng.standard_normal(p.shape).astype(dtype))
        opt.step()
    monkeypatch.undo()
    state = [{k: v.numpy().copy() for k, v in opt.state[p].items()} for p in params]
    return [p.detach().numpy().copy() for p in params], state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, options", CONFIGS, ids=lambda c: str(c))
def test_compiled_updates_equal_the_numpy_updates_bit_for_bit(name, options, dtype,
                                                              monkeypatch):
    fast = _train(name, options, dtype, SIZES, True, monkeypatch)
    reference = _train(name, options, dtype, SIZES, False, monkeypatch)
    for got, expected in zip(fast[0], reference[0]):
        assert got.dtype == dtype and np.array_equal(got, expected)
    for got, expected in zip(fast[1], reference[1]):
        assert got.keys() == expected.keys()
        for key in got:
            assert np.array_equal(got[key], expected[key]), key


@pytest.mark.parametrize("name, options", CONFIGS[::3], ids=lambda c: str(c))
def test_nan_and_inf_gradients_spread_as_in_the_numpy_updates(name, options, monkeypatch):
    def run(compiled):
        if not compiled:
            monkeypatch.setitem(_fast._MODULES, "optim", None)
        p = rg.tensor(np.linspace(-1, 1, 6, dtype=np.float32), requires_grad=True)
        opt = getattr(rg.optim, name)([p], **options)
        for grad in ([1, 2, np.nan, 4, 5, 6], [np.inf, 1, 1, -np.inf, 0, 1]):
            p.grad = rg.tensor(np.array(grad, np.float32))
            opt.step()
        monkeypatch.undo()
        return p.detach().numpy()
    assert np.array_equal(run(True), run(False), equal_nan=True)


def test_the_compiled_kernels_run_and_the_version_is_bumped(monkeypatch):
    calls = []
    kernels = _fast.compiled("optim")
    monkeypatch.setattr(kernels, "adam", lambda *a: calls.append(a[0].size))
    p = rg.tensor(np.ones((4, 5), np.float32), requires_grad=True)
    opt = rg.optim.Adam([p])
    p.grad = rg.ones(4, 5)
    version = p._version[0]
    opt.step()
    assert calls == [20] and p._version[0] == version + 1


def test_non_contiguous_or_mixed_dtype_arrays_take_the_numpy_path():
    p = rg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    grad = np.ones((3, 4), np.float32)
    assert compiled_update(p, grad, np.zeros((3, 4), np.float32)) is _fast.compiled("optim")
    assert compiled_update(p, np.ones((4, 3), np.float32).T) is None        # strided
    assert compiled_update(p, grad, np.zeros((3, 4), np.float64)) is None   # mixed dtypes
    half = rg.tensor(np.ones(3, np.float16), requires_grad=True)
    assert compiled_update(half, np.ones(3, np.float16)) is None             # not compiled
