"""The fused RMS normalization op (retrograd/ops/rms_norm.py) and F.rms_norm: against PyTorch
(outputs and every gradient, float64 and float32, default eps), against finite differences
(through the engine and alone), against its reference backward, its declared cost against a
brute-force count, the edges (zero rows, empty inputs, overflowing rows, half dtypes, a
weight of another dtype) and the argument errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.ops.rms_norm import RMSNorm, rms_norm_reference_backward
from tests.ops.cost_harness import check
from tests.oracle import check_backward_alone, check_op, randn

# (input shape, normalized_shape): one and two normalized dims, no batch dims, a size-1 dim
CASES = [((3, 4, 5), (5,)), ((2, 3, 4), (3, 4)), ((6,), (6,)), ((4, 1), (1,))]


@pytest.mark.parametrize("shape, normalized", CASES)
def test_rms_norm_matches_torch_with_and_without_weight(shape, normalized):
    x, w = randn(*shape, seed=1), randn(*normalized, seed=2)
    check_op(lambda x, w: F.rms_norm(x, normalized, w), lambda x, w: TF.rms_norm(x, normalized, w),
             x, w)
    check_op(lambda x: F.rms_norm(x, normalized), lambda x: TF.rms_norm(x, list(normalized)), x)


@pytest.mark.parametrize("eps", [None, 1e-6, 0.5])
def test_rms_norm_float32_and_eps_match_torch(eps):
    x, w = randn(4, 3, 8, seed=3) * 1e-3, randn(8, seed=4)   # small rows: eps matters
    check_op(lambda x, w: F.rms_norm(x, (8,), w, eps), lambda x, w: TF.rms_norm(x, [8], w, eps),
             x, w, dtype=np.float32)


@pytest.mark.parametrize("no_grad", [(0,), (1,)])
def test_rms_norm_with_one_input_not_requiring_grad(no_grad):
    x, w = randn(3, 5, seed=5), randn(5, seed=6)
    check_op(lambda x, w: F.rms_norm(x, (5,), w), lambda x, w: TF.rms_norm(x, [5], w), x, w,
             no_grad=no_grad)


def test_rms_norm_backward_alone_and_reference():
    x, w = randn(3, 2, 4, seed=7), randn(2, 4, seed=8)
    attrs = {"normalized_ndim": 2, "eps": 1e-5}
    check_backward_alone(RMSNorm, [x, w], attrs)
    check_backward_alone(RMSNorm, [x, None], attrs)
    g = randn(3, 2, 4, seed=9)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    TF.rms_norm(xt, [2, 4], wt, 1e-5).backward(torch.tensor(g))
    ref_x, ref_w = rms_norm_reference_backward(x, w, g, 2, 1e-5)
    np.testing.assert_allclose(ref_x, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref_w, wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    rx, rw = rg.tensor(x, requires_grad=True), rg.tensor(w, requires_grad=True)
    F.rms_norm(rx, (2, 4), rw, 1e-5).backward(rg.tensor(g))
    np.testing.assert_allclose(rx.grad.numpy(), ref_x, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rw.grad.numpy(), ref_w, rtol=1e-12, atol=1e-14)


def test_rms_norm_equals_its_composition():
    x, w = randn(3, 6, seed=10), randn(6, seed=11)
    rx, cx = rg.tensor(x, requires_grad=True), rg.tensor(x, requires_grad=True)
    y = F.rms_norm(rx, (6,), rg.tensor(w), 1e-4)
    composed = cx / ((cx * cx).mean(-1, keepdim=True) + 1e-4).sqrt() * rg.tensor(w)
    g = rg.tensor(randn(3, 6, seed=12))
    y.backward(g)
    composed.backward(g)
    np.testing.assert_allclose(y.detach().numpy(), composed.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(rx.grad.numpy(), cx.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("needs", [(True, True), (True, None), (False, True)])
def test_rms_norm_cost_equals_a_brute_force_count(needs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5))
    w = rng.standard_normal(5) if needs[1] is not None else None
    eps = 1e-5

    def normalize(x):
        rstd = 1.0 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
        return x * rstd, rstd

    def forward(args, gemm):
        x_hat = normalize(args[0])[0]
        return x_hat * args[1] if args[1] is not None else x_hat

    x_hat, rstd = normalize(x)   # saved by the forward: not counted in the backward

    def backward(gy, gemm):
        grads = {}
        if needs[0]:
            g = gy * w if w is not None else gy
            grads[0] = rstd * (g - x_hat * (g * x_hat).mean(axis=-1, keepdims=True))
        if needs[1]:
            grads[1] = (gy * x_hat).sum(axis=(0, 1))
        return grads

    check(RMSNorm, (x, w), needs, dict(normalized_ndim=1, eps=eps), forward, backward,
          lambda *shape: rng.standard_normal(shape))


def test_rms_norm_of_zero_rows_matches_torch():
    x = randn(3, 4, seed=13)
    x[1] = 0.0
    check_op(lambda x: F.rms_norm(x, (4,)), lambda x: TF.rms_norm(x, [4]), x, gradcheck=False)
    check_op(lambda x: F.rms_norm(x, (4,), eps=1e-3), lambda x: TF.rms_norm(x, [4], eps=1e-3),
             x)


@pytest.mark.parametrize("shape", [(0, 4), (2, 0, 4)])
def test_rms_norm_of_an_empty_input_is_empty_as_in_torch(shape):
    x, w = rg.randn(*shape, requires_grad=True), rg.ones(4, requires_grad=True)
    y = F.rms_norm(x, (4,), w)
    assert y.shape == shape and y.dtype == rg.float32
    y.sum().backward()
    assert x.grad.shape == shape and np.all(w.grad.numpy() == 0)


def test_rms_norm_of_huge_rows_is_the_true_value_where_torch_overflows():
    x = np.array([[1e20, -2e20, 3e20], [1e-3, 2e-3, 0.0]], np.float32)
    rx = rg.tensor(x, requires_grad=True)
    F.rms_norm(rx, (3,)).backward(rg.tensor(np.ones((2, 3), np.float32)))
    x64 = torch.tensor(x.astype(np.float64), requires_grad=True)
    want = TF.rms_norm(x64, [3], eps=float(np.finfo(np.float32).eps))
    want.backward(torch.ones(2, 3, dtype=torch.float64))
    got = F.rms_norm(rg.tensor(x), (3,)).numpy()
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(rx.grad.numpy(), x64.grad.numpy(), rtol=1e-5, atol=1e-30)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_rms_norm_of_half_dtypes_keeps_the_dtype_and_takes_float32_eps(dtype):
    x = randn(2, 8, seed=14).astype(np.float32) * 1e-3  # the eps of float32, not of dtype
    ours = F.rms_norm(rg.tensor(x).to(getattr(rg, dtype)), (8,))
    theirs = TF.rms_norm(torch.tensor(x).to(getattr(torch, dtype)), [8])
    assert ours.dtype == getattr(rg, dtype)
    np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), rtol=1e-2)


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")
def test_rms_norm_with_a_weight_of_another_dtype_returns_the_input_dtype_as_torch():
    x, w = randn(3, 4, seed=15).astype(np.float32), randn(4, seed=16)
    check_op(lambda x, w: F.rms_norm(x.float(), (4,), w),
             lambda x, w: TF.rms_norm(x.float(), [4], w), x.astype(np.float64), w,
             gradcheck=False, rtol=1e-6, atol=1e-7)


def test_rms_norm_is_one_node_and_refuses_double_backward():
    x = rg.randn(2, 3, requires_grad=True)
    y = F.rms_norm(x, (3,), rg.ones(3, requires_grad=True))
    assert type(y.grad_fn).__name__.startswith("RMSNorm")
    (gx,) = rg.autograd.grad(y.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="RMSNorm"):
        gx.sum().backward()


def test_rms_norm_output_modified_in_place_is_reported():
    x = rg.randn(2, 3, requires_grad=True)
    y = F.rms_norm(x, (3,))
    with rg.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="RMSNormBackward: a tensor saved for backward"):
        y.sum().backward()


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.rms_norm(x, (4,)), ValueError, r"rms_norm: normalized_shape \(4,\) does not "
                                                r"match the last 1 dims of the input of shape"),
    (lambda x: F.rms_norm(x, (3,), rg.ones(4)), ValueError, r"rms_norm: weight of shape \(4,\)"),
    (lambda x: F.rms_norm(x, (3,), eps=-1.0), ValueError, "rms_norm: eps must be"),
    (lambda x: F.rms_norm(x.long(), (3,)), TypeError, "rms_norm: expected a floating-point"),
    (lambda x: F.rms_norm(x, (0,)), ValueError, "rms_norm"),
])
def test_rms_norm_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(rg.randn(2, 3))
