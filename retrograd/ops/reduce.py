"""Reductions: sum, mean, var, max/min (values and indices), amax/amin, logsumexp.

``axis`` is a tuple of non-negative axes or None (all axes); callers normalize it. The
backward of every reduction first puts the reduced axes back as size-1 axes
(``_unsqueeze_reduced``) and then broadcasts to the input shape.
"""

import numpy as np

from retrograd.autograd.function import Function
from retrograd.dtypes import is_floating

__all__ = ["Sum", "Mean", "Var", "MaxDim", "MinDim", "Amax", "Amin", "LogSumExp", "wide_sum",
           "wide_mean"]


def _accumulator(x):
    """float32 for bfloat16 arrays, else None (NumPy's own choice). NOTE: ml_dtypes sums
    bfloat16 in bfloat16, where adding 0.1 a hundred thousand times stalls at 32; PyTorch
    accumulates in float32. (float16 is fine: NumPy already accumulates it in float32.)"""
    if isinstance(x, np.ndarray) and x.dtype.kind == "V" and is_floating(x.dtype):
        return np.float32
    return None


def wide_sum(x, axis=None, keepdims=False):
    """np.sum that keeps x's dtype but accumulates bfloat16 in float32 (arrays or Tensors).

    Example:
        >>> import numpy as np
        >>> from retrograd import bfloat16
        >>> x = np.full(100000, 0.1, dtype=bfloat16.np)
        >>> float(np.sum(x)), float(wide_sum(x))
        (32.0, 9984.0)
    """
    acc = _accumulator(x)
    if acc is None:
        return np.sum(x, axis=axis, keepdims=keepdims)
    return np.asarray(np.sum(x, axis=axis, keepdims=keepdims, dtype=acc)).astype(x.dtype)


def wide_mean(x, axis=None, keepdims=False):
    """np.mean with wide_sum's accumulation rule.

    Example:
        >>> import numpy as np
        >>> from retrograd import bfloat16
        >>> float(wide_mean(np.full((2, 50000), 0.5, dtype=bfloat16.np)))
        0.5
    """
    acc = _accumulator(x)
    if acc is None:
        return np.mean(x, axis=axis, keepdims=keepdims)
    return np.asarray(np.mean(x, axis=axis, keepdims=keepdims, dtype=acc)).astype(x.dtype)


def _unsqueeze_reduced(grad_out, axis, keepdims):
    """Give dL/dy back its reduced axes as size-1 axes, so it broadcasts against x."""
    if keepdims or axis is None:
        return grad_out
    return np.expand_dims(grad_out, axis)


def _count(shape, axis):
    """Number of elements folded into each output element."""
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    return int(np.prod([shape[a] for a in axis], dtype=np.int64))


class Sum(Function):
    """y = sum(x, axis).

    dL/dx = broadcast(dL/dy) to x's shape: every input element contributes with weight 1.
    Saves: only x's shape.
    """

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return wide_sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad_out):
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        return np.broadcast_to(grad, ctx.shape)


class Mean(Function):
    """y = sum(x, axis) / n, n = number of elements reduced.

    dL/dx = broadcast(dL/dy) / n.
    Saves: only x's shape.
    """

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return wide_mean(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad_out):
        n = _count(ctx.shape, ctx.axis)
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        return np.broadcast_to(grad / max(n, 1), ctx.shape)


class Var(Function):
    """y = sum((x - mean(x))^2, axis) / (n - correction).

    dL/dx = dL/dy * 2 (x - mean(x)) / (n - correction)
    (the mean's own dependence on x drops out because sum(x - mean) = 0). When
    n == correction the output is nan or inf and so is the gradient, as PyTorch.
    Saves: x (the centered values are recomputed, so that double backward sees x).
    """

    @staticmethod
    def forward(ctx, x, axis=None, correction=1, keepdims=False):
        ctx.axis, ctx.correction, ctx.keepdims = axis, correction, keepdims
        ctx.save_for_backward(x)
        acc = _accumulator(x)
        y = np.var(x, axis=axis, ddof=correction, keepdims=keepdims, dtype=acc)
        return np.asarray(y).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        n = _count(x.shape, ctx.axis)
        centered = x - wide_mean(x, axis=ctx.axis, keepdims=True)
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        dof = n - ctx.correction
        # NOTE: a Python float division by 0 raises; IEEE's inf gives torch's nan/inf instead
        return grad * centered * (2.0 / dof if dof != 0 else float("inf"))


class MaxDim(Function):
    """(values, indices) = max(x, axis) along one axis.

    dL/dx = dL/dvalues placed at the argmax position of each slice, 0 elsewhere.
    Saves: a boolean one-hot mask of x's shape marking the winners (a constant).
    Outputs: values (differentiable), indices (int64, not differentiable).
    """

    pick = staticmethod(np.argmax)

    @classmethod
    def forward(cls, ctx, x, axis, keepdims=False):
        if x.shape[axis] == 0:
            raise ValueError(f"{cls.__name__}: cannot reduce an empty axis {axis} of shape "
                             f"{x.shape}")
        indices = np.expand_dims(cls.pick(x, axis=axis), axis)
        values = np.take_along_axis(x, indices, axis)
        if ctx.needs_input_grad[0]:
            along_axis = [-1 if a == axis else 1 for a in range(x.ndim)]
            positions = np.arange(x.shape[axis]).reshape(along_axis)
            ctx.winner = positions == indices
        ctx.axis, ctx.keepdims = axis, keepdims
        if not keepdims:
            values, indices = values.squeeze(axis), indices.squeeze(axis)
        return values, indices.astype(np.int64)

    @staticmethod
    def backward(ctx, grad_values, grad_indices):
        grad = _unsqueeze_reduced(grad_values, (ctx.axis,), ctx.keepdims)
        return grad * ctx.winner


class MinDim(MaxDim):
    """(values, indices) = min(x, axis); backward as MaxDim with the argmin positions."""

    pick = staticmethod(np.argmin)


class Amax(Function):
    """y = max(x, axis) over one or more axes (or all), without indices.

    dL/dx = dL/dy * [x == y] / (number of ties), i.e. tied maxima share the gradient
    evenly (PyTorch's convention for amax and full max()).
    Saves: the tie-share weights of x's shape (a constant).
    """

    reduce = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx, x, axis=None, keepdims=False):
        if x.size == 0 and (axis is None or any(x.shape[a] == 0 for a in axis)):
            raise ValueError(f"{cls.__name__}: cannot reduce an empty axis of shape {x.shape}")
        y = cls.reduce(x, axis=axis, keepdims=True)
        if ctx.needs_input_grad[0]:
            is_max = x == y
            ctx.share = is_max / np.sum(is_max, axis=axis, keepdims=True).astype(x.dtype)
        ctx.axis, ctx.keepdims = axis, keepdims
        return y if keepdims else np.squeeze(y, axis=axis)

    @staticmethod
    def backward(ctx, grad_out):
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        return grad * ctx.share


class Amin(Amax):
    """y = min(x, axis); ties share the gradient evenly, as Amax."""

    reduce = staticmethod(np.min)


class LogSumExp(Function):
    """y = log(sum(exp(x), axis)), computed as m + log(sum(exp(x - m))) with m = max(x).

    dL/dx = dL/dy * exp(x - y) = dL/dy * softmax(x, axis).
    Saves: x and y.
    """

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)  # -inf (then 0) when empty
        m = np.where(np.isfinite(m), m, 0.0).astype(x.dtype, copy=False)
        with np.errstate(divide="ignore"):  # a row of -inf has logsumexp -inf, not a warning
            y = np.log(wide_sum(np.exp(x - m), axis=axis, keepdims=True)) + m
        if not keepdims:
            y = np.squeeze(y, axis=axis)
        ctx.axis, ctx.keepdims = axis, keepdims
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        return grad * np.exp(x - _unsqueeze_reduced(y, ctx.axis, ctx.keepdims))
