"""The compiled depthwise convolution (retrograd/_numba/conv.py) against the im2col + GEMM
path of retrograd/ops/conv.py, its reference backward and PyTorch: outputs and every
gradient, over strides, paddings, dilations, channel multipliers, Conv1d and Conv2d."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import _fast

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed: "
                                    "pip install -e '.[test,fast]' installs it")

CASES = [  # x shape, multiplier, kernel, stride, padding, dilation
    ((2, 4, 9, 11), 1, 3, 1, 1, 1), ((2, 4, 9, 11), 2, 3, 2, 1, 1),
    ((1, 3, 8, 8), 1, (3, 5), (1, 2), (2, 0), (2, 1)), ((3, 2, 7, 6), 3, 1, 1, 0, 1),
    ((2, 5, 6, 6), 1, 5, 1, 4, 1), ((1, 2, 12, 10), 1, 3, 3, 0, 2),
]


def _grads(lib, x, w, b, y_grad, **kwargs):
    tx, tw, tb = (lib.tensor(a, requires_grad=True) for a in (x, w, b))
    y = lib.nn.functional.conv2d(tx, tw, tb, groups=x.shape[1], **kwargs)
    y.backward(lib.tensor(y_grad))
    return [a.detach().numpy() for a in (y, tx.grad, tw.grad, tb.grad)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, multiplier, kernel, stride, padding, dilation", CASES)
def test_direct_depthwise_equals_gemm_path_and_pytorch(shape, multiplier, kernel, stride,
                                                       padding, dilation, dtype, monkeypatch):
    rng = np.random.default_rng(0)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((shape[1] * multiplier, 1, kh, kw)).astype(dtype)
    b = rng.standard_normal(shape[1] * multiplier).astype(dtype)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation)
    out_shape = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), groups=shape[1],
                                           **kwargs).shape
    y_grad = rng.standard_normal(tuple(out_shape)).astype(dtype)
    fast = _grads(rg, x, w, b, y_grad, **kwargs)
    monkeypatch.setitem(_fast._MODULES, "conv", None)
    gemm = _grads(rg, x, w, b, y_grad, **kwargs)
    monkeypatch.undo()
    oracle = _grads(torch, x, w, b, y_grad, **kwargs)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for got, path, expected in zip(fast, gemm, oracle):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, path, **tol)
        np.testing.assert_allclose(got, expected, **tol)


def test_conv1d_depthwise_and_frozen_inputs_take_the_direct_path(monkeypatch):
    calls = []
    kernels = _fast.compiled("conv")
    real = kernels.depthwise_conv2d_backward
    monkeypatch.setattr(kernels, "depthwise_conv2d_backward",
                        lambda *a: calls.append(a[1] is None) or real(*a))
    x = rg.tensor(np.random.default_rng(1).standard_normal((2, 3, 10)).astype(np.float32))
    w = rg.tensor(np.ones((3, 1, 3), np.float32), requires_grad=True)
    F.conv1d(x, w, groups=3, padding=1).sum().backward()
    tx = torch.tensor(x.numpy())
    tw = torch.ones(3, 1, 3, requires_grad=True)
    torch.nn.functional.conv1d(tx, tw, groups=3, padding=1).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5)
    assert calls == [False]          # x saved for dL/dW; no dL/dx wanted, so no weight


def test_gradcheck_float64_depthwise():
    rng = np.random.default_rng(2)
    x = rg.tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    w = rg.tensor(rng.standard_normal((4, 1, 3, 3)), requires_grad=True)
    assert rg.autograd.gradcheck(lambda a, b: F.conv2d(a, b, stride=2, padding=1, groups=2),
                                 (x, w))


# ---------------------------------------------------------------- col2im in the wide layout
WIDE_CASES = [  # x shape, filters, kernel, padding, dilation
    ((3, 4, 9, 11), 8, 3, 1, 1),            # more outputs than inputs: col2im
    ((2, 3, 10, 10), 3, 3, 4, 1),           # a padding wider than the kernel reaches
    ((2, 4, 12, 9), 6, (3, 5), (2, 1), 2),
    ((64, 20, 14, 14), 50, 5, 0, 1),        # LeNet's second layer: several sample chunks
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, filters, kernel, padding, dilation", WIDE_CASES)
def test_stride_1_grad_input_by_wide_col2im(shape, filters, kernel, padding, dilation, dtype,
                                            monkeypatch):
    """dL/dx of a stride-1 conv that is not itself a convolution: one GEMM per chunk of
    samples in the wide layout and col2im_wide, against the NumPy path (kh*kw GEMMs) and
    PyTorch."""
    rng = np.random.default_rng(4)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((filters, shape[1], kh, kw)).astype(dtype)
    kwargs = dict(padding=padding, dilation=dilation)
    out_shape = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), **kwargs).shape
    y_grad = rng.standard_normal(tuple(out_shape)).astype(dtype)
    kernels = _fast.compiled("conv")
    calls = []
    real = kernels.col2im_wide
    monkeypatch.setattr(kernels, "col2im_wide", lambda *a: calls.append(1) or real(*a))

    def grad_x(lib):
        tx = lib.tensor(x, requires_grad=True)
        lib.nn.functional.conv2d(tx, lib.tensor(w), **kwargs).backward(lib.tensor(y_grad))
        return tx.grad.detach().numpy()
    fast = grad_x(rg)
    assert len(calls) >= (2 if shape[0] == 64 else 1)
    monkeypatch.setitem(_fast._MODULES, "conv", None)
    gemm = grad_x(rg)
    monkeypatch.undo()
    oracle = grad_x(torch)
    tol = dict(rtol=2e-5, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(fast, gemm, **tol)
    np.testing.assert_allclose(fast, oracle, **tol)
