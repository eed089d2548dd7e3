"""Numerically stable softmax and log-softmax along one axis."""

import numpy as np

from retrograd.autograd.function import Function
from retrograd.ops.reduce import wide_sum

__all__ = ["Softmax", "LogSoftmax"]


def _shifted(x, axis):
    """x - max(x, axis): exp of it never overflows. Rows that are all -inf stay -inf
    instead of becoming NaN (their max is replaced by 0). initial=-inf makes the max of an
    empty axis -inf (so 0 after the replacement) instead of an error."""
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0.0).astype(x.dtype, copy=False)
    return x - m


class Softmax(Function):
    """y = exp(x - max) / sum(exp(x - max)) along axis.

    dL/dx = y * (dL/dy - sum(dL/dy * y, axis, keepdims))
    (the Jacobian diag(y) - y y^T applied to dL/dy without building it).
    Saves: y.
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        e = np.exp(_shifted(x, axis))
        y = e / wide_sum(e, axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return y * (grad_out - wide_sum(grad_out * y, axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    """y = x - max - log(sum(exp(x - max))) along axis.

    dL/dx = dL/dy - exp(y) * sum(dL/dy, axis, keepdims)   (exp(y) is the softmax).
    Saves: y.
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        z = _shifted(x, axis)
        y = z - np.log(wide_sum(np.exp(z), axis=axis, keepdims=True))  # -inf: masked rows
        ctx.axis = axis
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out - np.exp(y) * wide_sum(grad_out, axis=ctx.axis, keepdims=True)
