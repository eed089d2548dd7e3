"""Numerically stable softmax and log-softmax along one axis.

With the 'fast' extra installed, float32 C-contiguous arrays taken along their last axis run
the compiled kernels of retrograd/_numba/softmax.py (forward and backward); other dtypes,
layouts and axes take the NumPy code here, the reference.
"""

import math

import numpy as np

from retrograd._fast import compiled
from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text
from retrograd.autograd.function import Function
from retrograd.ops._parallel import copy_contiguous
from retrograd.ops.reduce import wide_sum

__all__ = ["Softmax", "LogSoftmax"]


def _rows(call):
    """(n, rows, axis) of a call along its axis: rows = the elements of x over that axis's
    length (each row one softmax)."""
    x = call.inputs[0]
    axis = call_arg(call, 1, "axis", -1)
    if not x.shape:
        return x.size, 1, axis
    return x.size, math.prod(d for i, d in enumerate(x.shape) if i != axis % len(x.shape)), axis


def _shifted(x, axis):
    """x - max(x, axis): exp of it never overflows. Rows that are all -inf stay -inf
    instead of becoming NaN (their max is replaced by 0). initial=-inf makes the max of an
    empty axis -inf (so 0 after the replacement) instead of an error."""
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0.0).astype(x.dtype, copy=False)
    return x - m


def _compiled_rows(x, axis, *others):
    """(kernels, x as (rows, C)) when the compiled kernels take x (float32, C-contiguous,
    axis the last one, not empty, not 0-d; ``others`` raw float32 arrays of x's shape, any layout:
    the callers copy them with copy_contiguous), else (None, None)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or not x.size or not x.ndim \
            or not x.flags.c_contiguous or not isinstance(axis, (int, np.integer)) \
            or axis % x.ndim != x.ndim - 1:
        return None, None
    for a in others:
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.shape != x.shape:
            return None, None
    kernels = compiled("softmax")
    return (kernels, x.reshape(-1, x.shape[-1])) if kernels is not None else (None, None)


class Softmax(Function):
    """y = exp(x - max) / sum(exp(x - max)) along axis.

    dL/dx = y * (dL/dy - sum(dL/dy * y, axis, keepdims))
    (the Jacobian diag(y) - y y^T applied to dL/dy without building it).
    A row of all -inf (sum(exp) = 0, e.g. a fully masked row) is defined as zeros, and then
    its gradient y * (...) is zero too, never NaN.
    Saves: y.
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        kernels, rows = _compiled_rows(x, axis)
        if kernels is not None:
            y = kernels.softmax_forward(rows).reshape(x.shape)
            ctx.axis = axis
            ctx.save_for_backward(y)
            return y
        e = np.exp(_shifted(x, axis))
        total = wide_sum(e, axis=axis, keepdims=True)
        y = e / np.where(total > 0, total, 1.0).astype(total.dtype, copy=False)  # -inf rows: 0
        ctx.axis = axis
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        kernels, rows = _compiled_rows(y, ctx.axis, grad_out)
        if kernels is not None:
            grad = copy_contiguous(grad_out).reshape(rows.shape)
            return kernels.softmax_backward(rows, grad).reshape(y.shape)
        return y * (grad_out - wide_sum(grad_out * y, axis=ctx.axis, keepdims=True))

    @staticmethod
    def cost(call):
        """Row max (n - rows), x - max, exp (n each), row sum (n - rows), divide (n):
        5n - 2 rows (the guard for all -inf rows is not counted); backward dL/dy * y (n), its
        row sum (n - rows), the subtraction and * y (n each): 4n - rows."""
        n, rows, axis = _rows(call)
        reduce = reduction_flops(n, rows)
        return Cost(3 * n + 2 * reduce, (3 * n + reduce) * call.needs(0),
                    f"softmax {shape_text(call.inputs[0])} axis {axis}: 5*n - 2*rows")


class LogSoftmax(Function):
    """y = x - max - log(sum(exp(x - max))) along axis.

    dL/dx = dL/dy - exp(y) * sum(dL/dy, axis, keepdims)   (exp(y) is the softmax).
    A row of all -inf (sum(exp) = 0) is defined as -inf with a zero gradient (its softmax
    exp(y) is all zeros; the gradient is masked to 0 there instead of passing dL/dy on).
    Saves: y.
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        kernels, rows = _compiled_rows(x, axis)
        if kernels is not None:
            y, totals = kernels.log_softmax_forward(rows)
            y = y.reshape(x.shape)
            ctx.axis = axis
            live = totals > 0
            ctx.live = None if live.all() else live.astype(x.dtype).reshape(x.shape[:-1] + (1,))
            ctx.save_for_backward(y)
            return y
        z = _shifted(x, axis)
        total = wide_sum(np.exp(z), axis=axis, keepdims=True)
        y = z - np.log(np.where(total > 0, total, 1.0)).astype(z.dtype, copy=False)  # -inf rows
        ctx.axis = axis
        # a constant mask, 0 on all -inf rows, kept only when there is one
        ctx.live = (total > 0).astype(x.dtype) if not np.all(total > 0) else None
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        kernels, rows = _compiled_rows(y, ctx.axis, grad_out)
        if kernels is not None:
            grad = copy_contiguous(grad_out).reshape(rows.shape)
            grad = kernels.log_softmax_backward(rows, grad).reshape(y.shape)
            return grad if ctx.live is None else grad * ctx.live
        grad = grad_out - np.exp(y) * wide_sum(grad_out, axis=ctx.axis, keepdims=True)
        return grad if ctx.live is None else grad * ctx.live   # 0 on all -inf rows

    @staticmethod
    def cost(call):
        """Row max (n - rows), x - max, exp (n each), row sum (n - rows), log (rows), the
        subtraction (n): 4n - rows; backward the row sum of dL/dy (n - rows), exp(y), the
        product and the subtraction (n each): 4n - rows."""
        n, rows, axis = _rows(call)
        reduce = reduction_flops(n, rows)
        return Cost(3 * n + 2 * reduce + rows, (3 * n + reduce) * call.needs(0),
                    f"log_softmax {shape_text(call.inputs[0])} axis {axis}: 4*n - rows")
