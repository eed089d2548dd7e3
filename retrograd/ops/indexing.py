"""Data-moving ops beyond ``shape.py``: flip, roll, the diagonal (a view) and its adjoint
diag_embed, and unfold (sliding windows, a view) and its adjoint.

Each is paired with its adjoint so that backward stays differentiable: Diagonal's backward is
DiagEmbed and the other way round, Unfold's is UnfoldBackward and the other way round; flip
and roll are their own adjoints (with the inverse shift).
"""

import numpy as np

from retrograd.autograd.cost import Cost, shape_text
from retrograd.autograd.function import Function

__all__ = ["Flip", "Roll", "Diagonal", "DiagEmbed", "Unfold", "UnfoldBackward"]


def _moves_cost(call, name, backward=0, note="no arithmetic"):
    """An op that only moves data: 0 FLOPs forward, ``backward`` FLOPs."""
    inputs = ", ".join(shape_text(i) for i in call.arrays())
    return Cost(0, backward, f"{name} {inputs} -> {shape_text(call.outputs[0])}: {note}")


class Flip(Function):
    """y = x with the order of the elements reversed along ``axes`` (a copy, as PyTorch's).

    dL/dx = dL/dy flipped along the same axes.  Saves: nothing.
    """

    moves_data = "a reversed copy: no arithmetic"

    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.flip(x, axes).copy()

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return np.flip(grad_out, ctx.axes)
        return Flip.apply(grad_out, axes=ctx.axes)

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (a flip each way)."""
        return _moves_cost(call, "flip")


class Roll(Function):
    """y = x with its elements shifted by ``shifts`` along ``axes``, those past the end
    coming back at the start (np.roll; a copy).

    dL/dx = dL/dy rolled by -shifts.  Saves: nothing.
    """

    moves_data = "a shifted copy: no arithmetic"

    @staticmethod
    def forward(ctx, x, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return np.roll(x, shifts, axes)

    @staticmethod
    def backward(ctx, grad_out):
        back = tuple(-s for s in ctx.shifts)
        if isinstance(grad_out, np.ndarray):
            return np.roll(grad_out, back, ctx.axes)
        return Roll.apply(grad_out, shifts=back, axes=ctx.axes)

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (a roll each way)."""
        return _moves_cost(call, "roll")


def _diagonal_view(x, offset, axis1, axis2):
    """np.diagonal as a writable view (NumPy's is flagged read-only, but shares memory)."""
    view = np.diagonal(x, offset, axis1, axis2)
    if x.flags.writeable:
        view.flags.writeable = True
    return view


def _embed(x, shape, offset, axis1, axis2):
    """zeros(shape) with x written on the diagonal (offset, axis1, axis2)."""
    y = np.zeros(shape, dtype=x.dtype)
    _diagonal_view(y, offset, axis1, axis2)[...] = x
    return y


class Diagonal(Function):
    """y = the diagonal of x in the plane (axis1, axis2), shifted by ``offset`` (> 0 above
    the main diagonal), as the last axis of y; a view of x, as PyTorch's.

    dL/dx = zeros of x's shape with dL/dy written on that diagonal (DiagEmbed).
    Saves: x's shape.
    """

    is_view = True
    moves_data = "a view of the diagonal: no arithmetic"

    @staticmethod
    def forward(ctx, x, offset=0, axis1=0, axis2=1):
        ctx.shape, ctx.offset, ctx.axis1, ctx.axis2 = x.shape, offset, axis1, axis2
        return _diagonal_view(x, offset, axis1, axis2)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return _embed(grad_out, ctx.shape, ctx.offset, ctx.axis1, ctx.axis2)
        return DiagEmbed.apply(grad_out, shape=ctx.shape, offset=ctx.offset, axis1=ctx.axis1,
                               axis2=ctx.axis2)

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (the diagonal written into zeros)."""
        return _moves_cost(call, "diagonal")


class DiagEmbed(Function):
    """y = zeros of ``shape`` with x written on the diagonal of the plane (axis1, axis2)
    shifted by ``offset``: the adjoint of Diagonal (x's last axis runs along the diagonal,
    its other axes are y's other axes in order). diag_embed and diag of a vector.

    dL/dx = the diagonal of dL/dy (Diagonal).
    Saves: nothing.
    """

    moves_data = "zeros with the input on a diagonal: no arithmetic"

    @staticmethod
    def forward(ctx, x, shape, offset=0, axis1=0, axis2=1):
        ctx.offset, ctx.axis1, ctx.axis2 = offset, axis1, axis2
        return _embed(x, shape, offset, axis1, axis2)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return np.diagonal(grad_out, ctx.offset, ctx.axis1, ctx.axis2)
        return Diagonal.apply(grad_out, offset=ctx.offset, axis1=ctx.axis1, axis2=ctx.axis2)

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (a diagonal read)."""
        return _moves_cost(call, "diag_embed")


def _windows(x, axis, size, step):
    """The read-only view of x's windows of ``size`` along axis every ``step``, the window as
    a new last axis (PyTorch's unfold)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, size, axis=axis)
    return windows[(slice(None),) * axis + (slice(None, None, step),)]


def _add_windows(windows, shape, axis, size, step):
    """zeros(shape) with each window added back at its place (the adjoint of _windows)."""
    y = np.zeros(shape, dtype=windows.dtype)
    count = windows.shape[axis]
    for j in range(size):   # one strided slice per position in the window
        target = (slice(None),) * axis + (slice(j, j + (count - 1) * step + 1, step),)
        y[target] += windows[..., j]
    return y


class Unfold(Function):
    """y = the windows of ``size`` elements of x along ``axis``, every ``step`` elements, as
    a new last axis: y[..., i, ..., j] = x[..., i * step + j, ...] (Tensor.unfold; a
    read-only view: the windows may overlap).

    dL/dx = zeros of x's shape with each window's dL/dy added back at its place
    (UnfoldBackward; overlapping windows add up).
    Saves: x's shape.
    """

    is_view = True
    moves_data = "a view of sliding windows: no arithmetic (its backward adds)"

    @staticmethod
    def forward(ctx, x, axis, size, step):
        ctx.shape, ctx.axis, ctx.size, ctx.step = x.shape, axis, size, step
        return _windows(x, axis, size, step)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return _add_windows(grad_out, ctx.shape, ctx.axis, ctx.size, ctx.step)
        return UnfoldBackward.apply(grad_out, shape=ctx.shape, axis=ctx.axis, size=ctx.size,
                                    step=ctx.step)

    @staticmethod
    def cost(call):
        """No arithmetic forward; backward the windows' gradients added into zeros: y.size
        adds."""
        return _moves_cost(call, "unfold", call.outputs[0].size * call.needs(0),
                           "0; backward y.size adds")


class UnfoldBackward(Function):
    """y = zeros of ``shape`` with every window x[..., i, ..., :] added at positions
    i * step ... i * step + size - 1 along axis: the adjoint of Unfold.

    dL/dx = the windows of dL/dy (Unfold).
    Saves: nothing.
    """

    @staticmethod
    def forward(ctx, x, shape, axis, size, step):
        ctx.axis, ctx.size, ctx.step = axis, size, step
        return _add_windows(x, shape, axis, size, step)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return _windows(grad_out, ctx.axis, ctx.size, ctx.step)
        return Unfold.apply(grad_out, axis=ctx.axis, size=ctx.size, step=ctx.step)

    @staticmethod
    def cost(call):
        """x.size adds into zeros; backward a view of windows: 0."""
        x = call.inputs[0]
        return Cost(x.size, 0, f"unfold_backward {shape_text(x)} -> "
                               f"{shape_text(call.outputs[0])}: x.size")
