"""The dense 3x3 and 5x5 convolutions computed directly (retrograd/_numba/dense_conv.py)
against the row-layout / im2col + GEMM path of retrograd/ops/conv.py and PyTorch: outputs
and every gradient over channel counts (odd filters, one input channel), paddings (none,
'same', wide, uneven), planes that are not square, float32 and float64; which convolutions
take them; NaN and inf; float64 gradchecks."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import _fast
from tests._numba.conftest import count_calls

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed: "
                                    "pip install -e '.[test,fast]' installs it")

FAMILY = "conv"

CASES = [  # x shape, filters, kernel size, padding (an int, or PyTorch's (h, w) pair)
    ((2, 3, 16, 16), 16, 3, 1), ((2, 4, 14, 18), 4, 3, 1), ((3, 1, 15, 15), 7, 3, 1),
    ((2, 4, 16, 16), 5, 3, 0), ((1, 2, 14, 12), 3, 3, 2), ((2, 3, 20, 14), 32, 3, (0, 2)),
    ((2, 1, 28, 28), 20, 5, 2), ((2, 3, 20, 17), 5, 5, 0), ((1, 2, 16, 16), 6, 5, (1, 3)),
]


@pytest.fixture
def spy(kernels, monkeypatch):
    return count_calls(kernels, monkeypatch, ("dense_conv2d", "dense_conv2d_grad_weight"))


def _grads(lib, x, w, b, y_grad, padding):
    tx, tw = (lib.tensor(a, requires_grad=True) for a in (x, w))
    tb = lib.tensor(b, requires_grad=True) if b is not None else None
    y = lib.nn.functional.conv2d(tx, tw, tb, padding=padding)
    y.backward(lib.tensor(y_grad))
    grads = [tx.grad, tw.grad] + ([tb.grad] if tb is not None else [])
    return [a.detach().numpy() for a in [y, *grads]]


def _inputs(shape, filters, dtype, seed, bias=True, kernel=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((filters, shape[1], kernel, kernel)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape, filters, kernel, padding", CASES)
def test_direct_conv_equals_the_gemm_path_and_pytorch(shape, filters, kernel, padding, bias,
                                                      dtype, spy, monkeypatch):
    x, w, b = _inputs(shape, filters, dtype, 0, bias, kernel)
    out_shape = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w),
                                           padding=padding).shape
    y_grad = np.random.default_rng(1).standard_normal(tuple(out_shape)).astype(dtype)
    fast = _grads(rg, x, w, b, y_grad, padding)
    assert spy["dense_conv2d"] >= 1 and spy["dense_conv2d_grad_weight"] == 1
    monkeypatch.setitem(_fast._MODULES, "conv", None)
    gemm = _grads(rg, x, w, b, y_grad, padding)
    monkeypatch.undo()
    oracle = _grads(torch, x, w, b, y_grad, padding)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-11)
    for got, path, expected in zip(fast, gemm, oracle):
        assert got.dtype == dtype and got.shape == expected.shape
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, path, rtol=tol["rtol"], atol=tol["atol"] * scale)
        np.testing.assert_allclose(got, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


@pytest.mark.parametrize("shape, filters, options", [
    ((2, 17, 16, 16), 8, {"padding": 1}),               # 17 input channels: GEMM
    ((2, 4, 8, 8), 4, {"padding": 1}),                  # an 8x10 wide plane: too small
    ((2, 3, 16, 16), 8, {"stride": 2}),
    ((2, 3, 16, 16), 8, {"dilation": 2}),
    ((2, 4, 16, 16), 8, {"groups": 2}),
])
def test_what_the_direct_kernels_do_not_take(shape, filters, options, spy):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((filters, shape[1] // options.get("groups", 1), 3, 3))
    F.conv2d(rg.tensor(x), rg.tensor(w.astype(np.float32)), **options)
    assert spy["dense_conv2d"] == 0


@pytest.mark.parametrize("shape, filters", [((2, 5, 16, 16), 8), ((2, 16, 32, 32), 16)])
def test_5_to_16_input_channels_take_them_on_all_threads_only(shape, filters, kernel_threads,
                                                              spy):
    """Serial, the direct loops pay up to 4 input channels; on all threads up to 16."""
    x, w, b = _inputs(shape, filters, np.float32, 4)
    y_grad = np.random.default_rng(5).standard_normal((shape[0], filters) + shape[2:])
    fast = _grads(rg, x, w, b, y_grad.astype(np.float32), 1)
    taken = (spy["dense_conv2d"], spy["dense_conv2d_grad_weight"])
    # forward, and dL/dx as the flipped-kernel convolution where there are no more filters
    # than input channels (else col2im)
    forwards = 1 + (filters <= shape[1])
    assert taken == ((forwards, 1) if kernel_threads == "parallel" else (0, 0))
    oracle = _grads(torch, x, w, b, y_grad.astype(np.float32), 1)
    for got, expected in zip(fast, oracle):
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5 * np.abs(expected).max())


def test_other_kernel_sizes_and_float16_do_not_take_them(spy):
    rng = np.random.default_rng(3)
    for size in [(7, 7), (3, 5), (1, 1)]:
        F.conv2d(rg.tensor(rng.standard_normal((2, 3, 16, 16)).astype(np.float32)),
                 rg.tensor(rng.standard_normal((4, 3, *size)).astype(np.float32)))
    F.conv2d(rg.tensor(rng.standard_normal((2, 3, 16, 16)).astype(np.float16)),
             rg.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float16)))
    assert spy["dense_conv2d"] == 0


def test_frozen_inputs_and_weights(spy):
    """dL/dx alone (frozen weights: the flipped-kernel convolution, 4 -> 4 channels, itself
    direct) and dL/dW alone (an input that needs no gradient: no dL/dx convolution)."""
    x, w, b = _inputs((2, 4, 16, 16), 4, np.float32, 4)
    tx, tw = rg.tensor(x, requires_grad=True), rg.tensor(w)
    F.conv2d(tx, tw, padding=1).sum().backward()
    assert (spy["dense_conv2d"], spy["dense_conv2d_grad_weight"]) == (2, 0)
    tx, tw = rg.tensor(x), rg.tensor(w, requires_grad=True)
    F.conv2d(tx, tw, padding=1).sum().backward()
    assert (spy["dense_conv2d"], spy["dense_conv2d_grad_weight"]) == (3, 1)
    ow = torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(x), ow, padding=1).sum().backward()
    np.testing.assert_allclose(tw.grad.numpy(), ow.grad.numpy(), rtol=1e-5, atol=1e-4)


def test_nan_and_inf_reach_the_outputs_they_touch_as_in_the_gemm_path(monkeypatch, spy):
    x, w, b = _inputs((1, 2, 16, 16), 4, np.float32, 5)
    x[0, 0, 3, 4], x[0, 1, 10, 10] = np.nan, np.inf
    y_grad = np.ones((1, 4, 16, 16), np.float32)
    with np.errstate(all="ignore"):
        fast = _grads(rg, x, w, b, y_grad, 1)
        monkeypatch.setitem(_fast._MODULES, "conv", None)
        gemm = _grads(rg, x, w, b, y_grad, 1)
    for got, expected in zip(fast, gemm):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kernel, padding", [(3, 1), (5, 2)])
def test_gradcheck_float64_direct_conv(kernel, padding, spy):
    rng = np.random.default_rng(6)
    x = rg.tensor(rng.standard_normal((1, 2, 14, 14)), requires_grad=True)
    w = rg.tensor(rng.standard_normal((3, 2, kernel, kernel)), requires_grad=True)
    b = rg.tensor(rng.standard_normal(3), requires_grad=True)
    assert rg.autograd.gradcheck(lambda a, k, c: F.conv2d(a, k, c, padding=padding),
                                 (x, w, b))
    assert spy["dense_conv2d"] > 0 and spy["dense_conv2d_grad_weight"] > 0
