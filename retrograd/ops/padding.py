"""Padding the last axes of an array: ConstantPad (a value around, or cropping for negative
pads) and IndexPad (reflect, replicate, circular: border values copied outwards), with
IndexPadBackward, the adjoint of IndexPad, that its backward runs.

Notation: ``pads`` = ((before_1, after_1), ..., (before_k, after_k)) for the last k axes, in
axis order (nn.functional.pad turns PyTorch's last-axis-first tuple into this). A negative
pad crops. Along a padded axis of length n, output position j sits at u = j - before in the
input's coordinates, and IndexPad copies x at

    reflect:    r(u) = -u for u < 0,  u for 0 <= u < n,  2*(n - 1) - u for u >= n
                (mirrored about the edge element, which is not repeated; needs pads < n)
    replicate:  clamp(u, 0, n - 1)
    circular:   the input cropped by the negative pads (length n'), wrapped around:
                crop_before + (j - max(before, 0)) mod n'  (needs pads <= n')

Every axis is one gather (an AxisMap with one tap, ops/_resample.py), so IndexPad is
separable and its backward is the adjoint gather, a scatter-add.
"""

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text
from retrograd.autograd.function import Function
from retrograd.ops._resample import AxisMap, adjoint_maps, apply_maps

__all__ = ["ConstantPad", "IndexPad", "IndexPadBackward", "pad_index", "padded_shape"]

MODES = ("reflect", "replicate", "circular")


def padded_shape(shape, pads):
    """``shape`` with its last len(pads) axes grown by before + after.

    Example:
        >>> padded_shape((2, 3, 4), ((1, 1), (2, -1)))
        (2, 5, 5)
    """
    k = len(pads)
    return tuple(shape[:len(shape) - k]) + tuple(
        n + before + after for n, (before, after) in zip(shape[len(shape) - k:], pads))


def _constant_pad(x, pads, value):
    """x with ``value`` around it (negative pads crop): a new array, x copied in once."""
    k = len(pads)
    out = np.full(padded_shape(x.shape, pads), value, dtype=x.dtype)
    src, dst = [Ellipsis], [Ellipsis]
    for n, (before, after) in zip(x.shape[x.ndim - k:], pads):
        src.append(slice(max(-before, 0), n - max(-after, 0)))
        dst.append(slice(max(before, 0), max(before, 0) + n - max(-before, 0) - max(-after, 0)))
    out[tuple(dst)] = x[tuple(src)]
    return out


def _negated(pads):
    return tuple((-before, -after) for before, after in pads)


class ConstantPad(Function):
    """y = x with ``value`` added around its last k axes; a negative pad crops instead.
    x:(*, n_1, ..., n_k), y:(*, n_1 + b_1 + a_1, ..., n_k + b_k + a_k), pads ((b_i, a_i), ...).

    y is linear in x: y = P x + value * (1 - P 1), with P placing x's kept elements, so
    dL/dx = P^T dL/dy: the part of dL/dy where x landed, and zeros where x was cropped away.
    That is ConstantPad itself with the pads negated and value 0 (what it crops, this pads
    back with zeros, and the other way round), so backward is this op again and a second
    derivative works (create_graph).
    Saves: nothing (the pads are attributes).
    """

    moves_data = "a copy into a filled array: no arithmetic (its backward is a copy too)"

    @staticmethod
    def forward(ctx, x, pads, value=0.0):
        ctx.pads = pads
        return _constant_pad(x, pads, value)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return _constant_pad(grad_out, _negated(ctx.pads), 0)
        return ConstantPad.apply(grad_out, pads=_negated(ctx.pads), value=0.0)

    @staticmethod
    def cost(call):
        """No arithmetic, forward or backward (a fill and a copy each way)."""
        return Cost(0, 0, f"constant_pad {shape_text(call.inputs[0])} -> "
                          f"{shape_text(call.outputs[0])}: no arithmetic")


def pad_index(size, before, after, mode):
    """The input position that each of the size + before + after output positions copies
    along one axis (see the module docstring), int64.

    Example:
        >>> pad_index(4, 2, 1, "reflect").tolist(), pad_index(4, 2, 1, "replicate").tolist()
        ([2, 1, 0, 1, 2, 3, 2], [0, 0, 0, 1, 2, 3, 3])
        >>> pad_index(4, 2, -1, "circular").tolist()
        [1, 2, 0, 1, 2]
    """
    out = size + before + after
    if mode == "circular":
        crop_before, crop_after = max(-before, 0), max(-after, 0)
        kept = size - crop_before - crop_after
        if out <= 0 or kept <= 0:
            return np.zeros(max(out, 0), dtype=np.int64)
        return crop_before + (np.arange(out, dtype=np.int64) - max(before, 0)) % kept
    u = np.arange(out, dtype=np.int64) - before
    if mode == "replicate":
        return np.clip(u, 0, size - 1)
    return np.where(u < 0, -u, np.where(u < size, u, 2 * (size - 1) - u))


def _maps(shape, pads, mode):
    k = len(pads)
    return [AxisMap(pad_index(n, before, after, mode), n)
            for n, (before, after) in zip(shape[len(shape) - k:], pads)]


def _gather(x, pads, mode):
    """IndexPad's forward on an array."""
    return apply_maps(x, _maps(x.shape, pads, mode))


def _scatter(grad, pads, mode, shape):
    """IndexPadBackward's forward on an array: the adjoint of _gather for an input of
    ``shape``."""
    return adjoint_maps(grad, _maps(shape, pads, mode))


class IndexPad(Function):
    """y = x padded by copies of its own border values: mode 'reflect', 'replicate' or
    'circular' over its last k axes (see the module docstring for the index r(u) each mode
    copies). x:(*, n_1, ..., n_k), y:(*, n_1 + b_1 + a_1, ...), pads ((b_i, a_i), ...).

    Along one axis y[..., j] = x[..., r(j)], a gather; the k axes are gathered one after the
    other (y[.., i, j] = x[.., r_1(i), r_2(j)]). A gather's gradient scatter-adds:

        dL/dx[..., m] = sum over j with r(j) = m of dL/dy[..., j]

    so an edge-near element copied into the padding receives the gradient of every copy (a
    corner of a 2-D reflection: up to four), and an element cropped away receives 0. That
    scatter is IndexPadBackward, whose own backward is this gather again (create_graph).
    Saves: nothing (the index is rebuilt from the pads and x's shape).
    Reference: np.pad with mode 'reflect', 'edge', 'wrap' for non-negative pads (the tests).
    """

    moves_data = "a gather (copies of border values): no arithmetic (its backward scatter-adds)"

    @staticmethod
    def forward(ctx, x, pads, mode):
        ctx.pads, ctx.mode, ctx.shape = pads, mode, x.shape
        return _gather(x, pads, mode)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return _scatter(grad_out, ctx.pads, ctx.mode, ctx.shape)
        return IndexPadBackward.apply(grad_out, pads=ctx.pads, mode=ctx.mode, shape=ctx.shape)

    @staticmethod
    def cost(call):
        """No arithmetic forward (a gather); backward dL/dy scatter-added into x's shape:
        y.size - x.size adds (each element of x sums the gradients of its copies)."""
        x, y = call.inputs[0], call.outputs[0]
        return Cost(0, reduction_flops(y.size, x.size) * call.needs(0),
                    f"{call_arg(call, 2, 'mode')}_pad {shape_text(x)} -> {shape_text(y)}: 0; "
                    f"backward y.size - x.size (scatter-add)")


class IndexPadBackward(Function):
    """y = the adjoint of IndexPad's gather on g (the scatter-add of IndexPad's docstring):
    g:(*, padded sizes), y:(*, shape[-k:]) with y[..., m] = sum over j with r(j) = m of
    g[..., j], axis by axis. Used as IndexPad's backward, and through it in double backward.

    dL/dg = IndexPad(dL/dy): the adjoint of a scatter-add is the gather.
    Saves: nothing.
    """

    @staticmethod
    def forward(ctx, grad, pads, mode, shape):
        ctx.pads, ctx.mode = pads, mode
        return _scatter(grad, pads, mode, shape)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return _gather(grad_out, ctx.pads, ctx.mode)
        return IndexPad.apply(grad_out, pads=ctx.pads, mode=ctx.mode)

    @staticmethod
    def cost(call):
        """A scatter-add of g into y: g.size - y.size adds; backward a gather: 0."""
        g, y = call.inputs[0], call.outputs[0]
        return Cost(reduction_flops(g.size, y.size), 0,
                    f"{call_arg(call, 2, 'mode')}_pad_backward {shape_text(g)} -> "
                    f"{shape_text(y)}: g.size - y.size (scatter-add)")
