"""Ordering along one axis: sort (values and the permutation) and topk (the k largest or
smallest values and where they were).

Order is total and stable: NaN counts as larger than every number (last ascending, first
descending, as PyTorch), and equal values keep their input order, in both directions (the
order of PyTorch's ``stable=True``). ``axis`` is a non-negative int; callers normalize it.
"""

import math

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, shape_text
from retrograd.autograd.function import Function
from retrograd.ops.shape import scatter_add_index

__all__ = ["Sort", "TopK", "stable_argsort", "along_axis_index"]


def stable_argsort(x, axis, descending=False):
    """The indices that sort x along axis, ties in input order, NaN as the largest value.

    Descending: sort the reversed lane ascending (ties now in reversed order), reverse the
    result (largest first, ties back in input order) and map positions in the reversed lane,
    j, back to n - 1 - j.
    """
    if not descending:
        return np.argsort(x, axis=axis, kind="stable")
    n = x.shape[axis]
    ascending = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return (n - 1) - np.flip(ascending, axis)


def along_axis_index(indices, axis):
    """The advanced index that picks ``indices`` along ``axis`` and keeps every other axis:
    ``x[along_axis_index(i, a)]`` is ``np.take_along_axis(x, i, a)``, for arrays and Tensors."""
    grid = list(np.ix_(*(np.arange(s) for s in indices.shape))) if indices.ndim else []
    grid[axis] = indices
    return tuple(grid)


def _compare_flops(shape, axis):
    """Comparisons of sorting every lane of length m along axis: m * ceil(log2 m) each."""
    m = shape[axis] if shape else 1
    lanes = math.prod(shape) // m if m else 0
    return lanes * m * math.ceil(math.log2(m)) if m > 1 else 0


class Sort(Function):
    """(values, indices) = sort(x, axis): values = x permuted along axis into order, indices
    (int64) the permutation, values = take_along_axis(x, indices, axis). Shapes: x, values,
    indices are all (*).

    values[..., j, ...] = x[..., indices[j], ...], so each input element goes to exactly one
    output position and
    dL/dx[..., indices[j], ...] = dL/dvalues[..., j, ...], i.e.
    dL/dx = take_along_axis(dL/dvalues, rank, axis), rank = the inverse permutation (where
    each element of x went). A gather, recorded under create_graph as indexing.
    Saves: indices (int64, x's shape; a constant), only when dL/dx is needed.
    """

    @staticmethod
    def forward(ctx, x, axis, descending=False):
        indices = stable_argsort(x, axis, descending)
        if ctx.needs_input_grad[0]:
            ctx.indices, ctx.axis = indices, axis
        return np.take_along_axis(x, indices, axis), indices.astype(np.int64, copy=False)

    @staticmethod
    def backward(ctx, grad_values, grad_indices):
        indices, axis = ctx.indices, ctx.axis
        if isinstance(grad_values, np.ndarray):
            grad = np.empty_like(grad_values)
            np.put_along_axis(grad, indices, grad_values, axis)
            return grad
        rank = np.empty_like(indices)
        positions = np.arange(indices.shape[axis]).reshape(
            [-1 if a == axis else 1 for a in range(indices.ndim)])
        np.put_along_axis(rank, indices, positions, axis)
        return grad_values[along_axis_index(rank, axis)]

    @staticmethod
    def cost(call):
        """m * ceil(log2 m) comparisons per lane of length m (a merge sort); backward a
        placement of dL/dvalues (a permutation): 0."""
        x = call.inputs[0]
        axis = call_arg(call, 1, "axis")
        return Cost(_compare_flops(x.shape, axis), 0,
                    f"sort x({shape_text(x)}) along axis {axis}: m*ceil(log2 m) per lane")


class TopK(Function):
    """(values, indices) = topk(x, k, axis, largest): the first k entries of x sorted along
    axis (descending when largest, else ascending), with their positions (int64). Shapes:
    x (*, m, *) -> values, indices (*, k, *).

    values[..., j, ...] = x[..., indices[j], ...] with distinct indices along the axis, so
    dL/dx = zeros(x.shape) with dL/dvalues placed at indices along axis (the other m - k
    entries did not reach the output and get 0). Under create_graph the placement is recorded
    (IndexBackward).
    Saves: indices (int64, values' shape; a constant) and x's shape, when dL/dx is needed.
    NOTE: the lane is fully sorted (stable, so ties resolve to the lowest index); sorted=False
    returns the same order.
    """

    @staticmethod
    def forward(ctx, x, k, axis, largest=True):
        indices = np.take(stable_argsort(x, axis, descending=largest), np.arange(k), axis)
        if ctx.needs_input_grad[0]:
            ctx.indices, ctx.axis, ctx.shape = indices, axis, x.shape
        return np.take_along_axis(x, indices, axis), indices.astype(np.int64, copy=False)

    @staticmethod
    def backward(ctx, grad_values, grad_indices):
        index = along_axis_index(ctx.indices, ctx.axis)
        if isinstance(grad_values, np.ndarray):
            grad = np.zeros(ctx.shape, dtype=grad_values.dtype)
            grad[index] = grad_values
            return grad
        return scatter_add_index(grad_values, ctx.shape, index, basic=False)

    @staticmethod
    def cost(call):
        """The sort of every lane: m * ceil(log2 m) comparisons per lane; backward the
        placement of k values per lane into zeros: 0."""
        x = call.inputs[0]
        k, axis = call_arg(call, 1, "k"), call_arg(call, 2, "axis")
        return Cost(_compare_flops(x.shape, axis), 0,
                    f"topk k={k} x({shape_text(x)}) along axis {axis}: m*ceil(log2 m) per lane")
