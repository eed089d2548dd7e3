"""The fused Linear op (retrograd/ops/linalg.py): y = x @ W^T + b, against PyTorch, against
finite differences (through the engine and alone), twice differentiated, and against the
composition x @ W.T + b in retrograd."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradcheck, gradgradcheck
from retrograd.ops.linalg import Linear
from tests.oracle import check_backward_alone, check_op, randn, to_torch

# (input shape, out_features): batch (N, in), a vector (in,), a sequence (B, T, in),
# in_features = 1, out_features = 1, a single row, a 4-D batch.
SHAPES = [
    ((5, 3), 4),
    ((3,), 4),
    ((2, 6, 3), 5),
    ((4, 1), 3),
    ((4, 3), 1),
    ((1, 3), 2),
    ((2, 3, 2, 4), 3),
]


def _case(x_shape, out_features, seed=0):
    in_features = x_shape[-1]
    return (randn(*x_shape, seed=seed), randn(out_features, in_features, seed=seed + 1),
            randn(out_features, seed=seed + 2))


@pytest.mark.parametrize("x_shape, out_features", SHAPES)
def test_linear_matches_torch_with_bias(x_shape, out_features):
    x, w, b = _case(x_shape, out_features)
    check_op(F.linear, torch.nn.functional.linear, x, w, b)


@pytest.mark.parametrize("x_shape, out_features", SHAPES)
def test_linear_matches_torch_without_bias(x_shape, out_features):
    x, w, _ = _case(x_shape, out_features)
    check_op(F.linear, torch.nn.functional.linear, x, w)


@pytest.mark.parametrize("no_grad", [(0,), (1,), (2,), (0, 2), (1, 2)])
def test_linear_with_some_inputs_not_requiring_grad(no_grad):
    # needs_input_grad skips work and saved arrays: the remaining gradients must still be right
    x, w, b = _case((4, 3), 2)
    check_op(F.linear, torch.nn.functional.linear, x, w, b, no_grad=no_grad)


@pytest.mark.parametrize("x_shape, out_features", [((5, 3), 4), ((2, 6, 3), 5), ((3,), 2)])
def test_linear_float32_matches_torch(x_shape, out_features):
    x, w, b = _case(x_shape, out_features, seed=3)
    out = check_op(F.linear, torch.nn.functional.linear, x, w, b, dtype=np.float32)
    assert out[0].dtype == rg.float32


@pytest.mark.parametrize("x_shape, out_features", SHAPES)
def test_linear_backward_alone(x_shape, out_features):
    x, w, b = _case(x_shape, out_features, seed=4)
    check_backward_alone(Linear, [x, w, b])
    check_backward_alone(Linear, [x, w, None])


@pytest.mark.parametrize("x_shape, out_features", [((4, 3), 2), ((2, 3, 3), 2), ((3,), 2)])
def test_linear_gradgradcheck(x_shape, out_features):
    x, w, b = _case(x_shape, out_features, seed=5)
    inputs = [rg.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert gradcheck(F.linear, inputs, atol=1e-7, rtol=1e-6)
    assert gradgradcheck(F.linear, inputs, atol=1e-7, rtol=1e-6)


def test_linear_double_backward_matches_torch():
    # d/dW of ||dL/dx||^2 with L = <c, linear(x, W, b)>: the second-order term flows through W
    x, w, b = _case((4, 3), 5, seed=6)
    c = randn(4, 5, seed=7)
    rx, rw, rb = (rg.tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (to_torch(a).requires_grad_() for a in (x, w, b))
    (gx_r,) = rg.autograd.grad(F.linear(rx, rw, rb), rx, rg.tensor(c), create_graph=True)
    (gx_t,) = torch.autograd.grad(torch.nn.functional.linear(tx, tw, tb), tx, to_torch(c),
                                  create_graph=True)
    (gx_r * gx_r).sum().backward()
    (gx_t * gx_t).sum().backward()
    np.testing.assert_allclose(rw.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert not np.allclose(rw.grad.numpy(), 0)


@pytest.mark.parametrize("x_shape, out_features", [((5, 3), 4), ((2, 6, 3), 5), ((3,), 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_equals_the_composition(x_shape, out_features, bias):
    x, w, b = _case(x_shape, out_features, seed=8)
    c = randn(*x_shape[:-1], out_features, seed=9)

    def run(fn):
        ts = [rg.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = fn(ts[0], ts[1], ts[2] if bias else None)
        y.backward(rg.tensor(c))
        return [y.detach().numpy()] + [t.grad.numpy() if t.grad is not None else None
                                       for t in ts]

    def composed(x_, w_, b_):
        y = x_ @ w_.T
        return y + b_ if b_ is not None else y

    fused, reference = run(F.linear), run(composed)
    for got, expected in zip(fused, reference):
        if expected is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_linear_output_node_is_one_fused_node():
    x = rg.randn(2, 3, requires_grad=True)
    y = F.linear(x, rg.randn(4, 3, requires_grad=True), rg.randn(4, requires_grad=True))
    assert y.grad_fn.name() == "LinearBackward"
    assert all(node is not None and node.name() == "AccumulateGrad"
               for node, _ in y.grad_fn.next_functions)


@pytest.mark.parametrize("x_shape, w_shape", [((0, 3), (4, 3)), ((2, 0), (4, 0)),
                                              ((2, 3), (0, 3)), ((2, 0, 3), (4, 3))])
def test_linear_size_zero_dims_match_torch(x_shape, w_shape):
    x, w, b = np.ones(x_shape), np.ones(w_shape), np.ones(w_shape[:1])
    check_op(F.linear, torch.nn.functional.linear, x, w, b, gradcheck=False)


def test_linear_keeps_float32_end_to_end():
    x = rg.randn(3, 4, requires_grad=True)
    w = rg.randn(2, 4, requires_grad=True)
    b = rg.randn(2, requires_grad=True)
    F.linear(x, w, b).sum().backward()
    assert {t.grad.dtype for t in (x, w, b)} == {rg.float32}


def test_linear_saved_input_modified_in_place_is_reported():
    x = rg.randn(3, 4, requires_grad=True)
    h = x * 1.0
    y = F.linear(h, rg.randn(2, 4, requires_grad=True))
    with rg.no_grad():
        h.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()
