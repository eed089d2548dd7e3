"""gradcheck and gradgradcheck: pass on correct ops, fail (GradcheckError) on wrong first and
second derivatives in full and fast mode, and refuse float32 inputs.

Correct ops must pass at the suite's tolerances (GRADCHECK_TOLERANCES, tighter than the
defaults); the wrong ones are checked at the defaults, the looser setting, so that they show
the defaults catch them (at the suite's tolerances they fail all the more)."""

import numpy as np
import pytest

import retrograd as rg
from retrograd.autograd import Function, gradcheck, gradgradcheck
from retrograd.autograd.gradcheck import GradcheckError
from tests.oracle import GRADCHECK_TOLERANCES, randn


class Square(Function):
    """y = x^2 with a correct differentiable backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return 2.0 * grad_out * x


class MissingTwo(Square):
    """Wrong first derivative: dL/dx = dL/dy * x (the 2 is missing)."""

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * x


class OneWrongEntry(Square):
    """Wrong in a single Jacobian entry (the last element)."""

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        grad = 2.0 * grad_out * x
        grad[-1] *= 1.01
        return grad


class CubeWrongSecond(Function):
    """y = x^3 with a right first derivative whose own derivative is wrong: under
    create_graph, one factor of x is detached, so d/dx(3 x^2) comes out as 3 x, not 6 x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        other = x.detach() if isinstance(x, rg.Tensor) else x
        return 3.0 * grad_out * x * other


def t64(*shape, seed=0):
    return rg.tensor(randn(*shape, seed=seed), dtype=rg.float64, requires_grad=True)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_passes_on_correct_ops(fast_mode):
    x, w = t64(3, 4), t64(4, 2, seed=1)
    tol = GRADCHECK_TOLERANCES
    assert gradcheck(lambda a, b: (a @ b).tanh(), (x, w), fast_mode=fast_mode, **tol)
    assert gradcheck(lambda a: Square.apply(a), (x,), fast_mode=fast_mode, **tol)
    assert gradcheck(lambda a: (a.exp(), a.softmax(-1)), (x,), fast_mode=fast_mode, **tol)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradgradcheck_passes_on_correct_ops(fast_mode):
    x, w = t64(2, 3), t64(3, 2, seed=1)
    tol = GRADCHECK_TOLERANCES
    assert gradgradcheck(lambda a, b: (a @ b).tanh(), (x, w), fast_mode=fast_mode, **tol)
    assert gradgradcheck(lambda a: Square.apply(a).exp(), (x,), fast_mode=fast_mode, **tol)


@pytest.mark.parametrize("op", [MissingTwo, OneWrongEntry])
@pytest.mark.parametrize("fast_mode", [False, True])
def test_fails_on_a_wrong_backward(op, fast_mode):
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda a: op.apply(a), (t64(3),), fast_mode=fast_mode)


def test_full_mode_message_names_the_entry():
    with pytest.raises(GradcheckError, match=r"Jacobian mismatch for input 0 \(shape \(3,\)\) "
                                             r"at \(output element, input element\) \(2, 2\)"):
        gradcheck(lambda a: OneWrongEntry.apply(a), (t64(3),))


def test_raise_exception_false_returns_false():
    assert gradcheck(lambda a: MissingTwo.apply(a), (t64(3),), raise_exception=False) is False
    assert gradcheck(lambda a: MissingTwo.apply(a), (t64(3),), raise_exception=False,
                     fast_mode=True) is False


def test_wrong_second_derivative_passes_gradcheck_but_fails_gradgradcheck():
    x = t64(3)
    assert gradcheck(lambda a: CubeWrongSecond.apply(a), (x,), **GRADCHECK_TOLERANCES)
    for fast_mode in (False, True):
        with pytest.raises(GradcheckError, match="gradgradcheck"):
            gradgradcheck(lambda a: CubeWrongSecond.apply(a), (x,), fast_mode=fast_mode)


def test_refuses_float32_inputs():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="input 0 has dtype retrograd.float32; finite "
                                         "differences need float64"):
        gradcheck(lambda a: a * 2.0, (x,))
    with pytest.raises(ValueError, match="float64"):
        gradgradcheck(lambda a: a * 2.0, (x,))


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda a: a * 2.0, (rg.tensor([1.0], dtype=rg.float64),))


def test_inputs_not_requiring_grad_are_left_alone():
    x = t64(3)
    c = rg.tensor(randn(3, seed=5), dtype=rg.float64)
    assert gradcheck(lambda a, b: a * b, (x, c), **GRADCHECK_TOLERANCES)
    np.testing.assert_array_equal(c.numpy(), randn(3, seed=5))
    np.testing.assert_array_equal(x.detach().numpy(), randn(3))  # perturbations undone
