"""Activation ops and functions: leaky_relu and gelu (retrograd/ops/activation.py, with the
erfc they rely on), and the functional forms of relu, tanh, sigmoid, softmax, log_softmax,
against PyTorch, finite differences (first and second order), and their argument errors."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradgradcheck
from retrograd.ops.activation import Gelu, GeluGrad, LeakyRelu, _erfc
from tests.oracle import away_from_kinks, check_backward_alone, check_op, randn

SHAPES = [(7,), (3, 4), (2, 3, 4), (1,), ()]


def _x(shape, seed=0, scale=2.0):
    return np.asarray(away_from_kinks(randn(*shape, seed=seed) * scale))


# ---------------------------------------------------------------- leaky_relu
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("slope", [0.01, 0.2, 1.5, -0.3])
def test_leaky_relu_matches_torch(shape, slope):
    check_op(lambda x: F.leaky_relu(x, slope), lambda x: TF.leaky_relu(x, slope), _x(shape))


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_kink_takes_the_slope_like_torch(slope):
    x = np.array([0.0, -0.0, 1.0, -1.0])
    check_op(lambda x: F.leaky_relu(x, slope), lambda x: TF.leaky_relu(x, slope), x,
             gradcheck=False)
    xt = rg.tensor([0.0], requires_grad=True)
    F.leaky_relu(xt, slope).backward(rg.tensor([1.0]))
    assert xt.grad.item() == pytest.approx(slope)


def test_leaky_relu_float32_backward_alone_and_twice_differentiable():
    check_op(lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1), _x((4, 5), 1),
             dtype=np.float32)
    check_backward_alone(LeakyRelu, [_x((4, 5), 2)], {"negative_slope": 0.1})
    x = rg.tensor(_x((3, 2), 3), requires_grad=True)
    assert gradgradcheck(lambda x: F.leaky_relu(x, 0.1), [x], atol=1e-7, rtol=1e-6)


# ---------------------------------------------------------------- gelu
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch(shape, approximate):
    check_op(lambda x: F.gelu(x, approximate), lambda x: TF.gelu(x, approximate=approximate),
             _x(shape, seed=4, scale=3.0))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_and_special_values_match_torch(approximate):
    check_op(lambda x: F.gelu(x, approximate), lambda x: TF.gelu(x, approximate=approximate),
             _x((6, 7), seed=5, scale=3.0), dtype=np.float32)
    # exactly 0, both break points of erfc (0.46875 and 4 after the sqrt(2) scaling), tails
    x = np.array([0.0, 0.46875 * math.sqrt(2), -4 * math.sqrt(2), 7.0, -7.0, 12.0, -12.0, 40.0,
                  -40.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_op(lambda x: F.gelu(x, approximate), lambda x: TF.gelu(x, approximate=approximate),
                 x, gradcheck=False, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_backward_alone(approximate):
    x = _x((4, 5), seed=6, scale=3.0)
    check_backward_alone(Gelu, [x], {"approximate": approximate})
    check_backward_alone(GeluGrad, [randn(4, 5, seed=7), x], {"approximate": approximate})


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_is_twice_differentiable(approximate):
    x = rg.tensor(_x((3, 4), seed=8, scale=3.0), requires_grad=True)
    assert gradgradcheck(lambda x: F.gelu(x, approximate), [x], atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_double_backward_matches_torch(approximate):
    x = _x((5, 3), seed=9, scale=3.0)
    rx, tx = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (gr,) = rg.autograd.grad(F.gelu(rx, approximate).sum(), rx, create_graph=True)
    (gt,) = torch.autograd.grad(TF.gelu(tx, approximate=approximate).sum(), tx,
                                create_graph=True)
    (gr * gr).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    # a third derivative is not provided: it must say so, not return a wrong value
    (g2,) = rg.autograd.grad(F.gelu(rx, approximate).sum(), rx, create_graph=True)
    (h,) = rg.autograd.grad(g2.sum(), rx, create_graph=True)
    with pytest.raises(RuntimeError, match="GeluGradBackward"):
        h.sum().backward()


def test_erfc_matches_math_erfc():
    x = np.concatenate([np.linspace(-6.0, 27.0, 20001), [0.46875, -0.46875, 4.0, -4.0, 0.0]])
    expected = np.array([math.erfc(v) for v in x])
    np.testing.assert_allclose(_erfc(x), expected, rtol=2e-15, atol=1e-300)  # denormals: atol
    x32 = x.astype(np.float32)
    got32 = _erfc(x32)
    assert got32.dtype == np.float32
    reference32 = np.array([math.erfc(v) for v in x32.astype(np.float64)])
    normal = reference32 > 1e-30  # float32 denormals lose relative accuracy
    np.testing.assert_allclose(got32[normal], reference32[normal], rtol=5e-6)
    special = _erfc(np.array([np.inf, -np.inf, np.nan]))
    assert special[0] == 0.0 and special[1] == 2.0 and np.isnan(special[2])


# ---------------------------------------------------------------- the other activations
@pytest.mark.parametrize("rg_fn, torch_fn", [
    (F.relu, TF.relu), (F.tanh, torch.tanh), (F.sigmoid, torch.sigmoid),
])
@pytest.mark.parametrize("shape", SHAPES)
def test_elementwise_activations_match_torch(rg_fn, torch_fn, shape):
    check_op(rg_fn, torch_fn, _x(shape, seed=10))


def test_relu_kink_has_zero_gradient_like_torch():
    check_op(F.relu, TF.relu, np.array([0.0, -0.0, 2.0, -2.0]), gradcheck=False)


@pytest.mark.parametrize("fn, torch_fn", [(F.softmax, TF.softmax),
                                          (F.log_softmax, TF.log_softmax)])
@pytest.mark.parametrize("shape, dim", [((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1),
                                        ((2, 3, 4), 1), ((5,), 0), ((2, 1), 1)])
def test_softmax_functions_match_torch(fn, torch_fn, shape, dim):
    check_op(lambda x: fn(x, dim), lambda x: torch_fn(x, dim), randn(*shape, seed=11))


@pytest.mark.parametrize("fn, torch_fn", [(F.softmax, TF.softmax),
                                          (F.log_softmax, TF.log_softmax)])
def test_softmax_functions_dtype_and_implicit_dim(fn, torch_fn):
    x = randn(2, 3, 4, seed=12)
    check_op(lambda x: fn(x, -1, dtype=rg.float64), lambda x: torch_fn(x, -1, dtype=torch.float64),
             x, dtype=np.float32, gradcheck=False)
    with pytest.warns(UserWarning, match="implicit dimension"):
        y = fn(rg.tensor(x), None)
    with pytest.warns(UserWarning):  # torch picks dim 0 for 3-D inputs too
        expected = torch_fn(torch.tensor(x), None)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-12)


@pytest.mark.parametrize("fn, torch_fn", [
    (lambda x: F.relu(x, inplace=True), lambda x: TF.relu(x, inplace=True)),
    (lambda x: F.leaky_relu(x, 0.2, inplace=True), lambda x: TF.leaky_relu(x, 0.2, inplace=True)),
])
def test_inplace_activations_write_into_the_input_and_still_backpropagate(fn, torch_fn):
    x = _x((3, 4), seed=13)

    def run(framework_fn, h):
        out = framework_fn(h)
        assert out is h
        return out

    check_op(lambda x: run(fn, x * 1.0), lambda x: run(torch_fn, x * 1.0), x)


def test_inplace_activation_on_a_leaf_that_requires_grad_is_refused():
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        F.relu(rg.randn(3, requires_grad=True), inplace=True)


# ---------------------------------------------------------------- errors
def test_activation_errors():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        F.gelu(rg.randn(3), approximate="erf")
    with pytest.raises(TypeError, match=r"gelu: expected a floating-point input, got dtype "
                                        r"retrograd.int64 \(shape \(2,\)\)"):
        F.gelu(rg.tensor([1, 2]))
    with pytest.raises(TypeError, match="leaky_relu: expected a floating-point input"):
        F.leaky_relu(rg.tensor([1, 2]))
    with pytest.raises(TypeError, match="relu: input must be a Tensor, got ndarray"):
        F.relu(np.ones(3))


@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
@pytest.mark.parametrize("fn", [lambda x: F.gelu(x), lambda x: F.gelu(x, "tanh"),
                                lambda x: F.leaky_relu(x, 0.1)])
def test_activations_keep_low_precision_dtypes(dtype, fn):
    x = rg.tensor(_x((3, 4), seed=14)).to(dtype).requires_grad_()
    y = fn(x)
    y.float().sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    expected = fn(rg.tensor(_x((3, 4), seed=14))).numpy()
    np.testing.assert_allclose(y.float().detach().numpy(), expected, rtol=2e-2, atol=2e-2)


def test_exact_gelu_without_scipy_equals_the_scipy_path(monkeypatch):
    """The NumPy erfc fallback (no SciPy installed) gives the same values and gradients."""
    from retrograd.ops import activation

    x = np.linspace(-9.0, 9.0, 301)
    g = np.cos(x)
    with_scipy = (activation._run_kernel(activation._exact_gelu_kernel, x),
                  activation._run_kernel(activation._exact_gelu_backward_kernel, x, g))
    monkeypatch.setattr(activation, "_ndtr", None)
    without = (activation._run_kernel(activation._exact_gelu_kernel, x),
               activation._run_kernel(activation._exact_gelu_backward_kernel, x, g))
    for a, b in zip(with_scipy, without):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-300)


def test_gelu_kernels_cover_arrays_larger_than_one_chunk():
    """Chunked on two threads: every element is computed (also the last partial chunk)."""
    x = np.random.default_rng(0).standard_normal(3 * 65536 + 17)
    for mode in ("none", "tanh"):
        check_op(lambda t: F.gelu(t, approximate=mode),
                 lambda t: torch.nn.functional.gelu(t, approximate=mode), x, gradcheck=False)
