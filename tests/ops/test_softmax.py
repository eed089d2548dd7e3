"""Softmax and LogSoftmax (retrograd/ops/softmax.py) against PyTorch, by finite differences
through the engine and alone, twice differentiated, in float32, along every dim, and for
stability: huge logits (1e4), -inf entries (masked positions) and fully masked rows."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops.softmax import LogSoftmax, Softmax
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn


def _leaves(*arrays):
    return [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]


OPS = [("softmax", Softmax), ("log_softmax", LogSoftmax)]


def _call(name, dim):
    return lambda t: getattr(t, name)(dim)


@pytest.mark.parametrize("shape, dim", [((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((2, 3, 4), -3),
                                        ((5,), 0), ((4, 1), 1), ((0, 3), 1), ((0, 3), 0), ((2, 0),
                                                                                           1),
                                        ((), 0)], ids=str)
@pytest.mark.parametrize("name, op", OPS, ids=[o[0] for o in OPS])
def test_matches_torch(name, op, shape, dim):
    x = 2 * randn(*shape) if shape else np.array(0.5)
    check_op(_call(name, dim), _call(name, dim), x)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("name, op", OPS, ids=[o[0] for o in OPS])
def test_backward_alone(name, op, axis):
    check_backward_alone(op, [randn(2, 3, 4)], {"axis": axis})


@pytest.mark.parametrize("name, op", OPS, ids=[o[0] for o in OPS])
def test_float32_matches_torch(name, op):
    (y,) = check_op(_call(name, -1), _call(name, -1), 3 * randn(4, 6), dtype=np.float32)
    assert y.dtype == rg.float32


@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("name, op", OPS, ids=[o[0] for o in OPS])
def test_second_order(name, op, dim):
    assert gradgradcheck(_call(name, dim), _leaves(randn(2, 3)), **GRADCHECK_TOLERANCES)


def test_function_forms():
    x = randn(3, 4)
    check_op(lambda t: rg.softmax(t, 1), lambda t: torch.softmax(t, 1), x)
    check_op(lambda t: rg.log_softmax(t, 0), lambda t: torch.log_softmax(t, 0), x)


def test_log_softmax_is_log_of_softmax():
    x = rg.tensor(randn(3, 4))
    np.testing.assert_allclose(x.log_softmax(1).numpy(), np.log(x.softmax(1).numpy()), rtol=1e-12)
    np.testing.assert_allclose(x.softmax(1).sum(1).numpy(), np.ones(3), rtol=1e-12)


STABILITY = [
    ("huge", [[1e4, 1e4 - 1.0, 0.0, -1e4], [-1e4, -1e4 + 3.0, -1e4, -1e4]]),
    ("minus_inf_entries", [[0.5, -np.inf, 1.0, -np.inf], [-np.inf, 2.0, -np.inf, -np.inf]]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case, data", STABILITY, ids=[s[0] for s in STABILITY])
@pytest.mark.parametrize("name, op", OPS, ids=[o[0] for o in OPS])
def test_stable_for_huge_and_minus_inf_logits(name, op, case, data, dtype):
    # finite differences cannot step from -inf, so the gradient check is torch's autograd only
    with np.errstate(over="raise", invalid="raise"):
        (y,) = check_op(_call(name, 1), _call(name, 1), np.array(data), dtype=dtype,
                        gradcheck=False)
    assert not np.any(np.isnan(y.detach().numpy()))


@pytest.mark.parametrize("name, op", OPS, ids=[o[0] for o in OPS])
def test_fully_masked_row_is_defined_with_zero_gradient(name, op):
    """A row of all -inf: softmax 0, log_softmax -inf, gradient 0 (torch gives NaN; the
    policy of docs/stability.md). The other rows match torch."""
    data = np.array([[-np.inf, -np.inf, -np.inf], [0.0, 1.0, -np.inf]])
    x = rg.tensor(data, requires_grad=True)
    y = getattr(x, name)(1)
    (y * rg.tensor(np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]]))).sum().backward()
    expected = getattr(torch.tensor(data), name)(1).numpy()
    np.testing.assert_array_equal(y.detach().numpy()[0], 0.0 if name == "softmax" else -np.inf)
    np.testing.assert_array_equal(x.grad.numpy()[0], 0.0)
    np.testing.assert_allclose(y.detach().numpy()[1], expected[1])


def test_softmax_of_a_constant_shift_is_unchanged():
    x = randn(2, 5)
    a = rg.tensor(x).softmax(1).numpy()
    b = rg.tensor(x + 1e3).softmax(1).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-9)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_dim_errors(name):
    with pytest.raises(IndexError,
                       match=rf"{name}: dim 2 is out of range for a tensor with 2 dims"):
        getattr(rg.ones(2, 3), name)(2)
    with pytest.raises(TypeError, match=rf"{name}: dim must be an int"):
        getattr(rg.ones(2, 3), name)(None)
