"""The oracle itself must be able to fail: a wrong backward is caught by both checks."""

import numpy as np
import pytest

import retrograd as rg
from retrograd.autograd import Function
from tests.oracle import check_backward_alone, check_op, randn


class WrongSquare(Function):
    """y = x^2 with a deliberately wrong backward (dL/dx = dL/dy * x, missing the 2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * x


def test_check_op_catches_a_wrong_gradient():
    with pytest.raises(AssertionError):
        check_op(lambda x: WrongSquare.apply(x), lambda x: x * x, randn(3, 4))


def test_check_backward_alone_catches_a_wrong_gradient():
    with pytest.raises(AssertionError):
        check_backward_alone(WrongSquare, [randn(3, 4)])


def test_check_op_accepts_a_right_gradient():
    check_op(lambda x: x * x, lambda x: x * x, randn(3, 4))
    assert isinstance(rg.tensor(np.ones(2)), rg.Tensor)
