"""Reductions: sum, mean, var, max/min (values and indices), amax/amin, logsumexp.

``axis`` is a tuple of non-negative axes or None (all axes); callers normalize it. The
backward of every reduction first puts the reduced axes back as size-1 axes
(``_unsqueeze_reduced``) and then broadcasts to the input shape.
"""

import numpy as np

from retrograd.autograd.function import Function

__all__ = ["Sum", "Mean", "Var", "MaxDim", "MinDim", "Amax", "Amin", "LogSumExp"]


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
        return np.sum(x, axis=axis, keepdims=keepdims)

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
        return np.mean(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad_out):
        n = _count(ctx.shape, ctx.axis)
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        return np.broadcast_to(grad / max(n, 1), ctx.shape)


class Var(Function):
    """y = sum((x - mean(x))^2, axis) / (n - correction).

    dL/dx = dL/dy * 2 (x - mean(x)) / (n - correction)
    (the mean's own dependence on x drops out because sum(x - mean) = 0).
    Saves: x (the centered values are recomputed, so that double backward sees x).
    """

    @staticmethod
    def forward(ctx, x, axis=None, correction=1, keepdims=False):
        ctx.axis, ctx.correction, ctx.keepdims = axis, correction, keepdims
        ctx.save_for_backward(x)
        return np.var(x, axis=axis, ddof=correction, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        n = _count(x.shape, ctx.axis)
        centered = x - np.mean(x, axis=ctx.axis, keepdims=True)
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        return grad * centered * (2.0 / (n - ctx.correction))


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
            raise ValueError(f"{cls.__name__}: cannot reduce an empty axis {axis} of shape {x.shape}")
        indices = np.expand_dims(cls.pick(x, axis=axis), axis)
        values = np.take_along_axis(x, indices, axis)
        if ctx.needs_input_grad[0]:
            positions = np.arange(x.shape[axis]).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
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
        if x.size == 0:
            raise ValueError(f"{cls.__name__}: cannot reduce an empty tensor of shape {x.shape}")
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
        m = np.max(x, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0).astype(x.dtype, copy=False)
        y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
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
