"""Shape ops: reshape/view, permute, expand, indexing, cat, stack.

Reshape, permute, expand and basic indexing return NumPy views that share memory with
their input; they are marked ``is_view`` so that the output shares the input's version
counter and an in-place change through either is seen by both.
"""

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, shape_text, unbroadcast_flops
from retrograd.autograd.function import Function

__all__ = ["Reshape", "Permute", "Expand", "Index", "IndexBackward", "IndexPut", "Cat", "Stack",
           "Clone", "Unbind", "Split", "is_basic_index"]


def _moves_cost(call, name, backward=0, note="no arithmetic"):
    """The Cost of an op that only moves data: no FLOPs forward, ``backward`` FLOPs (what its
    backward computes: 0 for a reshape or a slice of dL/dy); the formula lists the shapes."""
    inputs = ", ".join(shape_text(i) for i in call.arrays())
    outputs = call.outputs
    out = shape_text(outputs[0]) if len(outputs) == 1 else f"{len(outputs)} outputs"
    return Cost(0, backward, f"{name} {inputs} -> {out}: {note}")


def _scatter_flops(basic, values):
    """The adds of scattering ``values`` elements into zeros: one per value (as np.add.at);
    0 for a basic index, whose scatter is an assignment (it never repeats an element)."""
    return 0 if basic else values


class Reshape(Function):
    """y = x with a new shape (same elements in row-major order).

    dL/dx = dL/dy reshaped to x's shape.
    Saves: only x's shape. The output is a view when NumPy can reshape without copying.
    """

    moves_data = "a reshape (a view or a copy): no arithmetic"

    @staticmethod
    def forward(ctx, x, shape, copy=None):
        ctx.shape = x.shape
        y = np.reshape(x, shape, copy=copy)
        ctx.is_view = y.base is not None
        return y

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out.reshape(ctx.shape)

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (a reshape each way)."""
        return _moves_cost(call, "reshape")


class Permute(Function):
    """y = x with its axes reordered: y.shape[i] = x.shape[dims[i]].

    dL/dx = dL/dy with the inverse permutation (argsort(dims)).
    Saves: only the permutation.
    """

    is_view = True
    moves_data = "a view with its axes reordered: no arithmetic"

    @staticmethod
    def forward(ctx, x, dims):
        ctx.inverse = tuple(np.argsort(dims))
        return np.transpose(x, dims)

    @staticmethod
    def backward(ctx, grad_out):
        return np.transpose(grad_out, ctx.inverse)

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (a permutation each way)."""
        return _moves_cost(call, "permute")


class Expand(Function):
    """y = x broadcast to a larger shape (a read-only view; no data is copied).

    dL/dx = dL/dy summed over the broadcast axes (the engine's shared sum-to-shape).
    Saves: nothing.
    """

    is_view = True
    moves_data = "a broadcast view: no arithmetic (its backward sums)"

    @staticmethod
    def forward(ctx, x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out

    @staticmethod
    def cost(call):
        """No arithmetic forward; backward dL/dy summed over the broadcast axes (an arithmetic
        backward): y.size - x.size adds."""
        x, y = call.inputs[0], call.outputs[0]
        return _moves_cost(call, "expand", unbroadcast_flops(y.shape, x.shape) * call.needs(0),
                           "0; backward y.size - x.size")


def _scatter_text(basic, name):
    return "0 (basic index)" if basic else f"{name}.size (scatter-add)"


def is_basic_index(index):
    """True when the index uses only ints, slices, None and Ellipsis (NumPy basic indexing,
    which returns a view and never repeats an element)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis))) and
               not isinstance(i, bool) for i in items)


class Index(Function):
    """y = x[index]: basic (ints, slices, None, ...) or integer-array/boolean indexing.

    dL/dx = zeros(x.shape) with dL/dy added at the indexed positions; an element picked
    several times (repeated indices) receives the sum of its gradients.
    Saves: the index (a constant) and x's shape.
    """

    moves_data = "a view or a gather: no arithmetic (its backward scatter-adds)"

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        ctx.basic = is_basic_index(index)
        ctx.is_view = ctx.basic
        return x[index]

    @staticmethod
    def backward(ctx, grad_out):
        return scatter_add_index(grad_out, ctx.shape, ctx.index, ctx.basic)

    @staticmethod
    def cost(call):
        """No arithmetic forward (a view or a gather); backward dL/dy scatter-added into
        zeros (an arithmetic backward): y.size adds for an integer or boolean index, none for
        a basic index (an assignment)."""
        basic = is_basic_index(call_arg(call, 1, "index"))
        scatter = _scatter_flops(basic, call.outputs[0].size)
        return _moves_cost(call, "index", scatter * call.needs(0),
                           f"0; backward {_scatter_text(basic, 'y')}")


def scatter_add_index(grad, shape, index, basic):
    """zeros(shape) with grad added at x[index]: the adjoint of indexing."""
    if not isinstance(grad, np.ndarray):
        return IndexBackward.apply(grad, shape=shape, index=index, basic=basic)
    out = np.zeros(shape, dtype=grad.dtype)
    if basic:
        out[index] = grad
    else:
        np.add.at(out, index, grad)
    return out


class IndexBackward(Function):
    """y = zeros(shape) with x added at [index] (the adjoint of Index; used by double backward).

    dL/dx = dL/dy[index].
    """

    @staticmethod
    def forward(ctx, x, shape, index, basic):
        ctx.index = index
        return scatter_add_index(x, shape, index, basic)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out[ctx.index]

    @staticmethod
    def cost(call):
        """x scatter-added into zeros: x.size adds for an integer or boolean index (as
        Index's backward), none for a basic index (an assignment); backward a gather: 0."""
        basic = call_arg(call, 3, "basic")
        return Cost(_scatter_flops(basic, call.inputs[0].size), 0,
                    f"index_backward {shape_text(call.inputs[0])} -> "
                    f"{shape_text(call.outputs[0])}: {_scatter_text(basic, 'x')}")


class IndexPut(Function):
    """y = x with x[index] replaced by v (v broadcasts to x[index]); ``x[index] = v``.

    dL/dx = dL/dy with zeros at the overwritten positions.
    dL/dv = dL/dy[index] (summed to v's shape by the engine).
    Saves: the index (a constant).
    """

    moves_data = "a copy with some elements overwritten: no arithmetic (its backward selects)"

    @staticmethod
    def forward(ctx, x, value, index):
        ctx.index = index
        y = x.copy()
        y[index] = value
        return y

    @staticmethod
    def backward(ctx, grad_out):
        need_x, need_v = ctx.needs_input_grad
        grad_x = None
        if need_x:
            kept = np.ones(grad_out.shape, dtype=bool)
            kept[ctx.index] = False
            grad_x = grad_out * kept
        return grad_x, (grad_out[ctx.index] if need_v else None)

    @staticmethod
    def cost(call):
        """No arithmetic forward; backward dL/dx a select (dL/dy, 0 where overwritten): y.size,
        and dL/dv a gather summed to v's shape: x[index].size - v.size adds."""
        x, value = call.inputs[:2]
        backward = call.needs(0) * x.size
        if call.needs(1):
            # the shape of x[index], from a zero-strided array: no memory of x's size
            picked = np.broadcast_to(np.zeros((), np.int8), x.shape)[call_arg(call, 2, "index")]
            backward += unbroadcast_flops(picked.shape, value.shape)
        return _moves_cost(call, "index_put", backward,
                           "0; backward y.size (select) + unbroadcast of v")


def _slice_along(axis, piece):
    """An index that takes ``piece`` (an int or slice) along ``axis`` and everything else."""
    return (slice(None),) * axis + (piece,)


class Cat(Function):
    """y = concatenate(xs, axis).

    dL/dx_i = the slice of dL/dy along axis that x_i occupies.
    Saves: the offsets of the pieces.
    """

    moves_data = "a concatenation: no arithmetic"

    @staticmethod
    def forward(ctx, *xs, axis=0):
        ctx.axis = axis
        ctx.bounds = np.cumsum([0] + [x.shape[axis] for x in xs]).tolist()
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad_out):
        b, axis = ctx.bounds, ctx.axis
        return tuple(grad_out[_slice_along(axis, slice(b[i], b[i + 1]))] if need else None
                     for i, need in enumerate(ctx.needs_input_grad))

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (slices of dL/dy)."""
        return _moves_cost(call, "cat")


class Stack(Function):
    """y = stack(xs, axis): a new axis of length len(xs).

    dL/dx_i = dL/dy taken at position i of that axis.
    Saves: nothing.
    """

    moves_data = "a stack (a copy into a new axis): no arithmetic"

    @staticmethod
    def forward(ctx, *xs, axis=0):
        ctx.axis = axis
        return np.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad_out):
        return tuple(grad_out[_slice_along(ctx.axis, i)] if need else None
                     for i, need in enumerate(ctx.needs_input_grad))

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (slices of dL/dy)."""
        return _moves_cost(call, "stack")


class Clone(Function):
    """y = a C-contiguous copy of x (clone() and contiguous()).

    dL/dx = dL/dy.  Saves: nothing.
    """

    moves_data = "a copy: no arithmetic"

    @staticmethod
    def forward(ctx, x):
        return np.array(x, copy=True, order="C")

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (dL/dy passes)."""
        return _moves_cost(call, "clone")


class Unbind(Function):
    """(y_0, ..., y_{T-1}) = the slices of x along ``axis``: x:(..., T, ...), y_t: x without
    that axis (views). The time steps of a sequence, as one node.

    dL/dx = stack(dL/dy_0, ..., dL/dy_{T-1}) along axis (missing ones are zeros).
    Saves: nothing. One node instead of T indexing ops matters for the gradient: T index
    ops would each scatter into a full-size zero array, O(T^2) work for the engine to add.
    The outputs are views of x and share its version counter.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.ops.shape import Unbind
        >>> x = rg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
        >>> steps = Unbind.apply(x, axis=0)
        >>> (steps[0] + 2 * steps[2]).sum().backward()
        >>> x.grad
        tensor([[1., 1.],
                [0., 0.],
                [2., 2.]])
    """

    is_view = True
    moves_data = "views of the slices: no arithmetic"

    @staticmethod
    def forward(ctx, x, axis=0):
        ctx.axis = axis
        return tuple(np.moveaxis(x, axis, 0))

    @staticmethod
    def backward(ctx, *grads):
        return np.stack(grads, axis=ctx.axis)

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (a stack of the dL/dy_t)."""
        return _moves_cost(call, "unbind")


class Split(Function):
    """(y_0, ..., y_{k-1}) = consecutive slices of x along axis, at the given bounds
    (split/chunk): y_i = x[..., bounds[i]:bounds[i+1], ...], views of x.

    dL/dx = concatenate(dL/dy_0, ..., dL/dy_{k-1}) along axis (missing ones are zeros).
    Saves: nothing. One node for all pieces: k indexing ops would each scatter into a
    full-size zero array in backward.
    """

    is_view = True
    moves_data = "views of the pieces: no arithmetic"

    @staticmethod
    def forward(ctx, x, axis, bounds):
        ctx.axis = axis
        return tuple(x[_slice_along(axis, slice(a, b))] for a, b in zip(bounds, bounds[1:]))

    @staticmethod
    def backward(ctx, *grads):
        return np.concatenate(grads, axis=ctx.axis)

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (a concatenation of the dL/dy_i)."""
        return _moves_cost(call, "split")
