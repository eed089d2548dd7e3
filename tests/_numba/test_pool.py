"""The compiled max and average pooling (retrograd/_numba/pool.py) against the NumPy passes
of retrograd/ops/pool.py and PyTorch: the same outputs (max pooling and its argmax bit for
bit, NaN and ties included) and gradients, on every window geometry."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import _fast

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed: "
                                    "pip install -e '.[test,fast]' installs it")

GEOMETRIES = [  # kernel, stride, padding, dilation, ceil_mode
    (2, 2, 0, 1, False), (3, 2, 1, 1, False), (3, 1, 1, 1, False), ((2, 3), (1, 2), (1, 0), 1,
                                                                    True),
    (3, 2, 1, 2, True), (5, 3, 2, 1, True), (1, 1, 0, 1, False),
]


def _run(x, function, compiled, monkeypatch, return_indices=False, **kwargs):
    if not compiled:
        monkeypatch.setitem(_fast._MODULES, "pool", None)
    t = rg.tensor(x, requires_grad=True)
    out = function(t, **kwargs, **({"return_indices": True} if return_indices else {}))
    y, indices = out if return_indices else (out, None)
    grad = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
    y.backward(rg.tensor(grad))
    monkeypatch.undo()
    return (y.detach().numpy(), t.grad.numpy(),
            indices.numpy() if indices is not None else None)


def _input(shape, dtype, special):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    if special:
        x.reshape(-1)[::7] = np.nan
        x.reshape(-1)[3::11] = -np.inf
        x.reshape(-1)[5::13] = 1.0          # ties
    return x


@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode", GEOMETRIES)
def test_compiled_max_pool_equals_the_numpy_passes_and_pytorch(kernel, stride, padding,
                                                               dilation, ceil_mode, dtype,
                                                               special, monkeypatch):
    x = _input((2, 3, 11, 9), dtype, special)
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                  ceil_mode=ceil_mode)
    fast = _run(x, F.max_pool2d, True, monkeypatch, return_indices=True, **kwargs)
    reference = _run(x, F.max_pool2d, False, monkeypatch, return_indices=True, **kwargs)
    assert np.array_equal(fast[0], reference[0], equal_nan=True)
    assert np.array_equal(fast[2], reference[2])
    np.testing.assert_allclose(fast[1], reference[1], rtol=1e-6, atol=1e-6)
    tx = torch.tensor(x, requires_grad=True)
    ty, t_indices = torch.nn.functional.max_pool2d(tx, return_indices=True, **kwargs)
    assert np.array_equal(fast[0], ty.detach().numpy(), equal_nan=True)
    assert np.array_equal(fast[2], t_indices.numpy())
    if not special:     # PyTorch's own gradient of a padding-only window goes astray
        ty.backward(torch.tensor(np.random.default_rng(1).standard_normal(ty.shape)
                                 .astype(dtype)))
        np.testing.assert_allclose(fast[1], tx.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("count_include_pad, divisor_override", [(True, None), (False, None),
                                                                 (True, 5)])
@pytest.mark.parametrize("kernel, stride, padding, ceil_mode", [
    (2, 2, 0, False), (3, 2, 1, False), (3, 2, 1, True), ((2, 3), (2, 1), (1, 1), True)])
def test_compiled_avg_pool_equals_the_numpy_passes_and_pytorch(kernel, stride, padding,
                                                               ceil_mode, count_include_pad,
                                                               divisor_override, monkeypatch):
    x = _input((2, 3, 10, 9), np.float32, False)
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                  count_include_pad=count_include_pad, divisor_override=divisor_override)
    fast = _run(x, F.avg_pool2d, True, monkeypatch, **kwargs)
    reference = _run(x, F.avg_pool2d, False, monkeypatch, **kwargs)
    np.testing.assert_allclose(fast[0], reference[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fast[1], reference[1], rtol=1e-6, atol=1e-7)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.avg_pool2d(tx, **kwargs)
    ty.backward(torch.tensor(np.random.default_rng(1).standard_normal(ty.shape)
                             .astype(np.float32)))
    np.testing.assert_allclose(fast[0], ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast[1], tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_the_compiled_kernels_run_for_contiguous_float_inputs_only(monkeypatch):
    calls = []
    kernels = _fast.compiled("pool")
    real = kernels.max_pool2d
    monkeypatch.setattr(kernels, "max_pool2d", lambda *a: calls.append(1) or real(*a))
    x = np.ones((1, 2, 4, 4), np.float32)
    F.max_pool2d(rg.tensor(x), 2)
    F.max_pool2d(rg.tensor(x.astype(np.float16)), 2)       # float16: the NumPy passes
    assert calls == [1]


@pytest.mark.parametrize("shape, ceil_mode, used", [
    ((2, 3, 8, 6), False, True), ((2, 3, 11, 9), False, True),   # odd: a row and column left
    ((2, 3, 11, 9), True, False)])                               # the last window sticks out
@pytest.mark.parametrize("special", [False, True])
def test_2x2_stride_2_pooling_runs_its_own_kernels_with_the_same_results(
        shape, ceil_mode, used, special, monkeypatch):
    """kernel 2, stride 2 (LeNet's and VGG's pools): the unrolled branch-free kernels, bit for
    bit the NumPy passes (ties and NaN: the same argmax), the gradient of an uncovered last
    row or column 0; a ceil-mode window reaching past x takes the general kernel."""
    from retrograd._numba import pool

    calls = []
    for name in ("_max_pool_2x2", "_max_pool_2x2_backward"):
        twins = getattr(pool, name)

        class Counted:
            def __init__(self, twins, name):
                self.twins, self.name = twins, name

            def pick(self, size):
                calls.append(self.name)
                return self.twins.pick(size)
        monkeypatch.setattr(pool, name, Counted(twins, name))
    x = _input(shape, np.float32, special)
    kwargs = dict(kernel_size=2, stride=2, ceil_mode=ceil_mode)
    fast = _run(x, F.max_pool2d, True, monkeypatch, return_indices=True, **kwargs)
    assert calls == (["_max_pool_2x2", "_max_pool_2x2_backward"] if used else [])
    reference = _run(x, F.max_pool2d, False, monkeypatch, return_indices=True, **kwargs)
    assert np.array_equal(fast[0], reference[0], equal_nan=True)
    assert np.array_equal(fast[2], reference[2])
    assert np.array_equal(fast[1], reference[1], equal_nan=True)
