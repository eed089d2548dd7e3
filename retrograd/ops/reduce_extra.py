"""More reductions: the product, and the median (of everything, or along one axis with the
indices).

As in ``reduce.py``: ``axis`` is normalized by the caller (a non-negative int or None), and
backward puts the reduced axis back as a size-1 axis before broadcasting to x's shape.
"""

import numpy as np

from retrograd.autograd.cost import Cost, reduction_flops, shape_text
from retrograd.autograd.function import Function

__all__ = ["Prod", "Median", "MedianDim", "products_of_others"]


def _keep_reduced(grad_out, axis, keepdims):
    """dL/dy with its reduced axis back as a size-1 axis (all axes when axis is None)."""
    if keepdims:
        return grad_out
    if axis is None:
        return grad_out.reshape(())
    return np.expand_dims(grad_out, axis) if isinstance(grad_out, np.ndarray) \
        else grad_out.unsqueeze(axis)


def _reduction_cost(call, forward, backward, formula):
    """The Cost of reducing x (n elements) to y (m): ``forward(n, m)`` and ``backward(n, m)``
    FLOPs (backward only when dL/dx is needed)."""
    x, y = call.inputs[0], call.outputs[0]
    n, m = x.size, y.size
    return Cost(forward(n, m), backward(n, m) if call.needs(0) else 0,
                f"{call.op.__name__.lower()} x({shape_text(x)}) -> {shape_text(y)}: {formula}")


def products_of_others(x, axis):
    """For each element of x, the product of the other elements of its group along ``axis``
    (an int), without division: exclusive cumulative products from the left and from the
    right, multiplied. Exact with zeros in x (a division y / x would give 0 / 0).

    Example:
        >>> import numpy as np
        >>> products_of_others(np.array([2.0, 0.0, 3.0, 4.0]), 0)
        array([ 0., 24.,  0.,  0.])
    """
    moved = np.moveaxis(x, axis, -1)
    left = np.ones_like(moved)
    right = np.ones_like(moved)
    np.cumprod(moved[..., :-1], axis=-1, out=left[..., 1:])
    np.cumprod(moved[..., :0:-1], axis=-1, out=right[..., -2::-1])
    return np.moveaxis(left * right, -1, axis)


def _products_of_others_recorded(x, axis):
    """products_of_others on a Tensor, as differentiable ops (for create_graph=True): row i
    of an (n, n) matrix holds the group with x_i replaced by 1, and Prod reduces each row.
    n^2 memory per group, only on this path."""
    moved = x.movedim(axis, -1)
    n = moved.shape[-1]
    rows = moved.unsqueeze(-2).expand(*moved.shape[:-1], n, n)
    rows = rows.masked_fill(np.eye(n, dtype=bool), 1.0)
    return Prod.apply(rows, axis=rows.ndim - 1).movedim(-1, axis)


class Prod(Function):
    """y = prod(x, axis): the product over one axis, or over all elements (axis None).

    dL/dx_i = dL/dy * prod_{j != i} x_j  (the product of the other elements of i's group),
    computed by products_of_others, without dividing y by x_i: with one zero in a group, the
    zero's entry is dL/dy times the product of the others and every other entry 0; with two
    or more zeros the whole group's gradient is 0.
    Saves: x.
    """

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axis, ctx.keepdims = axis, keepdims
        ctx.save_for_backward(x)
        return np.asarray(np.prod(x, axis=axis, keepdims=keepdims)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        grad = _keep_reduced(grad_out, ctx.axis, ctx.keepdims)
        flat = x.reshape(-1) if ctx.axis is None else x
        axis = 0 if ctx.axis is None else ctx.axis
        if isinstance(x, np.ndarray):
            others = products_of_others(flat, axis)
        else:
            others = _products_of_others_recorded(flat, axis)
        return grad * others.reshape(x.shape)

    @staticmethod
    def cost(call):
        """n - m multiplies; backward the two exclusive cumulative products (2n), their
        product (n) and dL/dy times it (n): 4n."""
        return _reduction_cost(call, lambda n, m: reduction_flops(n, m),
                               lambda n, m: 4 * n, "n - m")


class MedianDim(Function):
    """(values, indices) = the lower median of x along ``axis`` (the element at position
    (n - 1) // 2 of the sorted slice) and its index; a slice holding NaN gives NaN and the
    index of its first NaN, as PyTorch. Among equal values the index is that of a stable
    sort (PyTorch's CPU choice).

    dL/dx = dL/dvalues placed at the index of each slice, 0 elsewhere.
    Saves: a boolean one-hot mask of x's shape marking the chosen elements (a constant).
    Outputs: values (differentiable), indices (int64, not differentiable).
    """

    @staticmethod
    def forward(ctx, x, axis, keepdims=False):
        n = x.shape[axis]
        order = np.argsort(x, axis=axis, kind="stable")
        indices = np.take(order, [(n - 1) // 2], axis=axis)
        if x.dtype.kind in "fV":
            is_nan = np.isnan(x)
            first_nan = np.argmax(is_nan, axis=axis, keepdims=True)
            indices = np.where(np.any(is_nan, axis=axis, keepdims=True), first_nan, indices)
        values = np.take_along_axis(x, indices, axis)
        if ctx.needs_input_grad[0]:
            positions = np.arange(n).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
            ctx.chosen = positions == indices
        ctx.axis, ctx.keepdims = axis, keepdims
        if not keepdims:
            values, indices = values.squeeze(axis), indices.squeeze(axis)
        return values, indices.astype(np.int64)

    @staticmethod
    def backward(ctx, grad_values, grad_indices):
        grad = _keep_reduced(grad_values, ctx.axis, ctx.keepdims)
        return grad * ctx.chosen

    @staticmethod
    def cost(call):
        """A sort of each slice, counted as n log2(n / m) compares, the pick (m); backward
        dL/dvalues placed at the index: m."""
        return _reduction_cost(call, lambda n, m: _sort_flops(n, m) + m, lambda n, m: m,
                               "n log2(n/m) + m")


def _sort_flops(n, m):
    """Compares of sorting m groups of n / m elements: n log2(n / m) (0 for one element)."""
    per_group = n // max(m, 1)
    return int(n * np.log2(per_group)) if per_group > 1 else 0


class Median(Function):
    """y = the lower median of all elements of x (position (n - 1) // 2 when sorted); NaN
    when x holds NaN.

    dL/dx = dL/dy * [x == y] / (number of such x), i.e. elements equal to the median share
    the gradient evenly (PyTorch's rule; with a NaN median, the NaNs share it).
    Saves: the share weights of x's shape (a constant).
    """

    @staticmethod
    def forward(ctx, x):
        flat = x.reshape(-1)
        is_nan = np.isnan(flat) if x.dtype.kind in "fV" else np.zeros(flat.shape, bool)
        if is_nan.any():
            y = flat[np.argmax(is_nan)]
            chosen = np.isnan(x)
        else:
            y = np.partition(flat, (flat.size - 1) // 2)[(flat.size - 1) // 2]
            chosen = x == y
        if ctx.needs_input_grad[0]:
            ctx.share = chosen / np.asarray(np.sum(chosen), dtype=x.dtype)
        return np.asarray(y, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * ctx.share

    @staticmethod
    def cost(call):
        """A selection (partition) of the n elements, counted as n compares; backward the
        ties (n), their count (n - 1) and the product (n): 3n - 1."""
        return _reduction_cost(call, lambda n, m: n, lambda n, m: 3 * n - 1, "n")
