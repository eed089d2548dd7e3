"""Scatter: writing (scatter) or adding (scatter_add) the elements of src into a copy of x at
positions given by an index along one axis, the adjoints of gather.

For an index of shape (i_0, ..., i_{k-1}) and axis d, element [j_0, ..., j_{k-1}] of src goes
to x[j_0, ..., index[j], ..., j_{k-1}] (index[j] in position d). src may be larger than the
index: only src[:i_0, ..., :i_{k-1}] is used, as PyTorch.
"""

import numpy as np

from retrograd.autograd.cost import Cost, shape_text
from retrograd.autograd.function import Function
from retrograd.ops.shape import scatter_add_index

__all__ = ["Scatter", "ScatterAdd", "index_grid"]


def index_grid(index, axis):
    """The integer-array index that addresses x[j_0, ..., index[j], ..., j_{k-1}] for every
    position j of ``index``: arange(i_m) along every other axis m, broadcast."""
    grid = [np.arange(s).reshape([-1 if a == m else 1 for a in range(index.ndim)])
            for m, s in enumerate(index.shape)]
    grid[axis] = index
    return tuple(grid)


def _used_part(index):
    """The basic index of the part of src that the index uses (its leading corner)."""
    return tuple(slice(0, s) for s in index.shape)


def _src_gradient(grad_out, grid, src_shape, used):
    """dL/dsrc: dL/dy gathered at the scattered positions, placed in zeros of src's shape
    (src's unused part gets 0); a differentiable gather and scatter for Tensors."""
    picked = grad_out[grid]
    if picked.shape == tuple(src_shape):
        return picked
    return scatter_add_index(picked, src_shape, used, True)


def _scatter_cost(call, name, forward):
    index = call.attrs["index"]
    picked = int(np.prod(index.shape, dtype=np.int64))
    inputs = ", ".join(shape_text(i) for i in call.arrays())
    return Cost(forward * picked, 0,
                f"{name} {inputs} -> {shape_text(call.outputs[0])}: "
                f"{'index.size adds' if forward else 'no arithmetic'}")


class Scatter(Function):
    """y = x with y[j_0, ..., index[j], ..., j_{k-1}] = src[j] (src an array or a number; a
    position written twice keeps one of the values, unspecified as in PyTorch).

    dL/dx = dL/dy with zeros at the written positions;
    dL/dsrc[j] = dL/dy at the position src[j] was written to (PyTorch's rule: every src
    element used gets it, also one overwritten by a repeated index); 0 for the unused part.
    Saves: the index (a constant).
    """

    moves_data = "a copy with some elements overwritten: no arithmetic"

    @staticmethod
    def forward(ctx, x, src, index, axis):
        grid = index_grid(index, axis)
        ctx.grid, ctx.used = grid, _used_part(index)
        ctx.src_shape = np.shape(src)
        y = x.copy()
        y[grid] = src[ctx.used] if isinstance(src, np.ndarray) else src
        return y

    @staticmethod
    def backward(ctx, grad_out):
        need_x, need_src = ctx.needs_input_grad
        grad_x = grad_src = None
        if need_x:
            kept = np.ones(grad_out.shape, dtype=bool)
            kept[ctx.grid] = False
            grad_x = grad_out * kept
        if need_src:
            grad_src = _src_gradient(grad_out, ctx.grid, ctx.src_shape, ctx.used)
        return grad_x, grad_src

    @staticmethod
    def cost(call):
        """No arithmetic forward; backward a select for dL/dx and a gather for dL/dsrc."""
        cost = _scatter_cost(call, "scatter", 0)
        return Cost(0, call.outputs[0].size * call.needs(0), cost.formula)


class ScatterAdd(Function):
    """y = x with src[j] added at y[j_0, ..., index[j], ..., j_{k-1}] (repeated positions
    add up).

    dL/dx = dL/dy;  dL/dsrc[j] = dL/dy at the position src[j] was added to (0 for the unused
    part of src).
    Saves: the index (a constant).
    """

    @staticmethod
    def forward(ctx, x, src, index, axis):
        grid = index_grid(index, axis)
        ctx.grid, ctx.used, ctx.src_shape = grid, _used_part(index), src.shape
        y = x.copy()
        np.add.at(y, grid, src[ctx.used])
        return y

    @staticmethod
    def backward(ctx, grad_out):
        need_x, need_src = ctx.needs_input_grad
        grad_src = None
        if need_src:
            grad_src = _src_gradient(grad_out, ctx.grid, ctx.src_shape, ctx.used)
        return (grad_out if need_x else None), grad_src

    @staticmethod
    def cost(call):
        """index.size adds; backward a gather for dL/dsrc: 0."""
        return _scatter_cost(call, "scatter_add", 1)
