"""Resizing the last 1-3 axes by interpolation, as PyTorch's F.interpolate: UpsampleNearest
('nearest', 'nearest-exact'), UpsampleLinear ('linear', 'bilinear', 'trilinear') and
UpsampleBicubic ('bicubic'), each with its adjoint op (the backward, and through it double
backward). Despite the names they resize both ways (scale < 1 downsamples).

Every mode is separable: one AxisMap per axis (ops/_resample.py), each output position o
reading a few input positions of its axis with fixed weights. Along an axis of input length
n and output length m, PyTorch's source coordinate of o is

    s = scale * o                            align_corners=True, scale = (n - 1) / (m - 1)
    s = scale * (o + 0.5) - 0.5              align_corners=False (then s < 0 becomes 0, but
                                             not for cubic)

with scale = 1 / scale_factor when the caller passed a scale factor (PyTorch keeps the
user's factor, so 1.5 on 5 elements gives 7 outputs read at 1/1.5 steps, not 5/7), else
n / m. The taps:

    nearest        x[min(floor(scale * o), n - 1)]      (scale in float32, as PyTorch)
    nearest-exact  x[min(floor(scale * (o + 0.5)), n - 1)]
    linear         (1 - l) * x[i] + l * x[i + 1]        i = min(floor(s), n - 1), l = s - i
                   clipped to [0, 1], i + 1 kept at n - 1 on the last element; m = n copies
                   (i + 1 = i, l = 0), whatever the scale factor, as PyTorch
    cubic          sum_k w_k(t) x[clamp(i - 1 + k, 0, n - 1)], k = 0..3, i = floor(s),
                   t = s - i, w the cubic convolution kernel with A = -0.75

Positions and weights are computed in float32 for float16/bfloat16/float32 data and float64
for float64, in PyTorch's order of operations, so that indices agree at the exact ties;
float16/bfloat16 data is interpolated in float32 (PyTorch's opmath) and rounded back.
"""

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text
from retrograd.autograd.function import Function
from retrograd.ops._resample import AxisMap, adjoint_maps, apply_maps

__all__ = ["UpsampleNearest", "UpsampleNearestBackward", "UpsampleLinear",
           "UpsampleLinearBackward", "UpsampleBicubic", "UpsampleBicubicBackward",
           "nearest_index", "linear_taps", "cubic_taps"]

CUBIC_A = -0.75


def _compute_dtype(dtype):
    return np.float64 if dtype == np.float64 else np.float32


def _scale(n, m, scale, align_corners, dtype):
    """PyTorch's area_pixel_compute_scale: the step between output positions, in input
    positions."""
    if align_corners:
        return dtype(n - 1) / dtype(m - 1) if m > 1 else dtype(0)
    if scale is not None and scale > 0:
        return dtype(1.0 / scale)
    return dtype(n) / dtype(m)


def nearest_index(n, m, scale=None, exact=False):
    """The input position each of the m outputs copies (see the module docstring).

    Example:
        >>> nearest_index(5, 7).tolist(), nearest_index(5, 7, exact=True).tolist()
        ([0, 0, 1, 2, 2, 3, 4], [0, 1, 1, 2, 3, 3, 4])
    """
    step = _scale(n, m, scale, False, np.float32)
    o = np.arange(m)
    if exact:
        # PyTorch: floorf((o + 0.5) * scale), the product in double, rounded to float
        position = np.float32((o + 0.5) * np.float64(step))
    else:
        position = o.astype(np.float32) * step
    return np.minimum(np.floor(position).astype(np.int64), n - 1)


def _source(n, m, scale, align_corners, dtype, cubic):
    step = _scale(n, m, scale, align_corners, dtype)
    o = np.arange(m).astype(dtype)
    if align_corners:
        return step * o
    s = step * (o + dtype(0.5)) - dtype(0.5)
    return s if cubic else np.maximum(s, dtype(0))


def _floor_and_fraction(s, n, dtype):
    """PyTorch's guard_index_and_lambda: i = min(floor(s), n - 1), l = clip(s - i, 0, 1)."""
    i = np.minimum(np.floor(s).astype(np.int64), n - 1)
    return i, np.clip(s - i.astype(dtype), dtype(0), dtype(1))


def linear_taps(n, m, scale=None, align_corners=False, dtype=np.float64):
    """(index (2, m), weight (2, m)) of linear interpolation from n to m positions.

    Example:
        >>> index, weight = linear_taps(3, 4, align_corners=True)
        >>> index.tolist(), weight[1].round(4).tolist()
        ([[0, 0, 1, 2], [1, 1, 2, 2]], [0.0, 0.6667, 0.3333, 0.0])
    """
    if m == n:   # PyTorch copies (weights 1 and 0 on one element), whatever the scale
        o = np.arange(m)
        return np.stack([o, o]), np.stack([np.ones(m, dtype), np.zeros(m, dtype)])
    i, lam = _floor_and_fraction(_source(n, m, scale, align_corners, dtype, False), n, dtype)
    return np.stack([i, i + (i < n - 1)]), np.stack([dtype(1) - lam, lam])


def _cubic_near(x):
    """The cubic convolution kernel on |x| <= 1."""
    return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1


def _cubic_far(x):
    """The cubic convolution kernel on 1 < |x| < 2."""
    return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A


def cubic_taps(n, m, scale=None, align_corners=False, dtype=np.float64):
    """(index (4, m), weight (4, m)) of cubic convolution interpolation from n to m positions
    (indices clamped to the border, as PyTorch).

    Example:
        >>> index, weight = cubic_taps(4, 3, align_corners=True)
        >>> index[:, 1].tolist(), weight[:, 1].tolist()
        ([0, 1, 2, 3], [-0.09375, 0.59375, 0.59375, -0.09375])
    """
    i, t = _floor_and_fraction(_source(n, m, scale, align_corners, dtype, True), n, dtype)
    one = dtype(1)
    weight = np.stack([_cubic_far(t + one), _cubic_near(t), _cubic_near(one - t),
                       _cubic_far(one - t + one)]).astype(dtype)
    index = np.clip(i[None, :] + np.arange(-1, 3)[:, None], 0, n - 1)
    return index, weight


def _nearest_maps(in_size, size, scales, exact):
    return [AxisMap(nearest_index(n, m, scale, exact), n)
            for n, m, scale in zip(in_size, size, scales)]


def _weighted_maps(taps, in_size, size, scales, align_corners, dtype):
    maps = []
    for n, m, scale in zip(in_size, size, scales):
        index, weight = taps(n, m, scale, align_corners, dtype)
        maps.append(AxisMap(index, n, weight))
    return maps


def _interpolate(taps, x, in_size, size, scales, align_corners, adjoint=False):
    """The weighted modes on an array, in the compute dtype (see the module docstring):
    apply_maps, or with ``adjoint`` its adjoint (then x is the gradient of the output)."""
    dtype = _compute_dtype(x.dtype)
    maps = _weighted_maps(taps, in_size, size, scales, align_corners, dtype)
    data = x.astype(dtype, copy=False)
    y = adjoint_maps(data, maps) if adjoint else apply_maps(data, maps)
    return y.astype(x.dtype, copy=False)


def _spatial(shape, size):
    return tuple(shape[len(shape) - len(size):])


def _cost_text(name, call, formula):
    return f"{name} {shape_text(call.inputs[0])} -> {shape_text(call.outputs[0])}: {formula}"


class UpsampleNearest(Function):
    """y = x resized by copying the nearest input element, over the last k = len(size) axes:
    x:(N, C, n_1, ..., n_k), y:(N, C, m_1, ..., m_k) with size = (m_1, ..., m_k),

        y[.., o_1, ..., o_k] = x[.., r_1(o_1), ..., r_k(o_k)]

    r_i the nearest (or nearest-exact, ``exact``) index of the module docstring; ``scales``
    the scale factor of each axis (None: derived from the sizes).
    A gather's gradient scatter-adds: dL/dx[.., p] = sum over the outputs that copied p of
    dL/dy (each input element of a 2x upsampling collects a 2x2 block; with downsampling
    the elements no output copied get 0), axis by axis. That scatter is
    UpsampleNearestBackward, whose own backward is this gather again (create_graph).
    NOTE: PyTorch's backward special-cases m = n and m = 2n as copies and i >> 1 even when
    its forward used a scale factor that reads other elements (e.g. scale_factor=1.2 on 3
    elements: forward x[0, 0, 1], backward as if x[0, 1, 2]); here backward is always the
    adjoint of the forward that ran.
    Saves: nothing (the indices are rebuilt from the sizes).
    """

    moves_data = "a gather (nearest-neighbour copies): no arithmetic (its backward scatter-adds)"

    @staticmethod
    def forward(ctx, x, size, scales, exact=False):
        ctx.in_size = _spatial(x.shape, size)
        ctx.size, ctx.scales, ctx.exact = size, scales, exact
        return apply_maps(x, _nearest_maps(ctx.in_size, size, scales, exact))

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            maps = _nearest_maps(ctx.in_size, ctx.size, ctx.scales, ctx.exact)
            return adjoint_maps(grad_out, maps)
        return UpsampleNearestBackward.apply(grad_out, in_size=ctx.in_size, scales=ctx.scales,
                                             exact=ctx.exact)

    @staticmethod
    def cost(call):
        """No arithmetic forward (a gather); backward dL/dy scatter-added into x's shape:
        y.size - x.size adds when upsampling (each x element sums its copies' gradients)."""
        x, y = call.inputs[0], call.outputs[0]
        return Cost(0, reduction_flops(y.size, x.size) * call.needs(0),
                    _cost_text("upsample_nearest", call, "0; backward y.size - x.size"))


class UpsampleNearestBackward(Function):
    """y = the adjoint of UpsampleNearest's gather applied to g (its scatter-add):
    g:(N, C, m_1, ..., m_k), y:(N, C, in_size) with y[.., p] = the sum of g over the outputs
    that copied p. Used as UpsampleNearest's backward, and through it in double backward.

    dL/dg = UpsampleNearest(dL/dy): the adjoint of a scatter-add is the gather.
    Saves: nothing.
    """

    @staticmethod
    def forward(ctx, grad, in_size, scales, exact=False):
        ctx.size, ctx.scales, ctx.exact = _spatial(grad.shape, in_size), scales, exact
        return adjoint_maps(grad, _nearest_maps(in_size, ctx.size, scales, exact))

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            in_size = _spatial(grad_out.shape, ctx.size)
            return apply_maps(grad_out, _nearest_maps(in_size, ctx.size, ctx.scales, ctx.exact))
        return UpsampleNearest.apply(grad_out, size=ctx.size, scales=ctx.scales,
                                     exact=ctx.exact)

    @staticmethod
    def cost(call):
        """A scatter-add of g into y: g.size - y.size adds; backward a gather: 0."""
        g, y = call.inputs[0], call.outputs[0]
        return Cost(reduction_flops(g.size, y.size), 0,
                    _cost_text("upsample_nearest_backward", call, "g.size - y.size"))


def _passes(in_shape, size):
    """(elements before, elements after) of each per-axis pass of apply_maps (last axis
    first) from in_shape to the output sizes ``size`` of its last len(size) axes."""
    shape, k, passes = list(in_shape), len(size), []
    for j in range(k - 1, -1, -1):
        before = int(np.prod(shape))
        shape[len(shape) - k + j] = size[j]
        passes.append((before, int(np.prod(shape))))
    return passes


def _weighted_flops(in_shape, size, taps):
    """(forward, adjoint) FLOPs of the weighted maps: per pass, each element written costs
    ``taps`` products and taps - 1 adds; its adjoint ``taps`` products per element of the
    pass's output and the scatter's adds (taps * after - before)."""
    passes = _passes(in_shape, size)
    forward = sum((2 * taps - 1) * after for _, after in passes)
    adjoint = sum(taps * after + reduction_flops(taps * after, before)
                  for before, after in passes)
    return forward, adjoint


def _weighted_cost(call, name, taps):
    """The Cost of UpsampleLinear or UpsampleBicubic (``taps`` per axis)."""
    x, y = call.inputs[0], call.outputs[0]
    size = y.shape[len(y.shape) - len(call_arg(call, 1, "size")):]
    forward, adjoint = _weighted_flops(x.shape, size, taps)
    return Cost(forward, adjoint * call.needs(0),
                _cost_text(name, call, f"per axis pass {2 * taps - 1} per element written; "
                                       f"backward {taps} + the scatter's adds"))


def _weighted_backward_cost(call, name, taps):
    """The Cost of an adjoint op: its forward is the op's backward and the other way round."""
    g, y = call.inputs[0], call.outputs[0]
    size = g.shape[len(g.shape) - len(call_arg(call, 1, "in_size")):]
    forward, adjoint = _weighted_flops(y.shape, size, taps)
    return Cost(adjoint, forward * call.needs(0),
                _cost_text(name, call, f"per axis pass {taps} per element read + the "
                                       f"scatter's adds; backward {2 * taps - 1} per element"))


class UpsampleLinear(Function):
    """y = x resized by linear interpolation along each of its last k = len(size) axes
    (linear, bilinear, trilinear): x:(N, C, n_1, ..., n_k), y:(N, C, m_1, ..., m_k). Along
    one axis, with i_0, i_1, l of the module docstring for output position o,

        y[.., o] = (1 - l) * x[.., i_0] + l * x[.., i_1]

    and the axes one after the other, the last first (bilinear: y = A_H x A_W^T, A the
    (m, n) interpolation matrices with two non-zeros per row). y is linear in x, so

        dL/dx = A_H^T dL/dy A_W: along each axis dL/dx[.., p] = sum over o with i_0 = p of
                (1 - l) * dL/dy[.., o] + sum over o with i_1 = p of l * dL/dy[.., o]

    a weighted scatter-add (UpsampleLinearBackward, whose backward is this op again).
    Attrs: size (m_1, ..., m_k), scales (the scale factor per axis, or None), align_corners.
    Saves: nothing (indices and weights are rebuilt from the sizes).
    """

    @staticmethod
    def forward(ctx, x, size, scales, align_corners):
        ctx.in_size = _spatial(x.shape, size)
        ctx.size, ctx.scales, ctx.align_corners = size, scales, align_corners
        return _interpolate(linear_taps, x, ctx.in_size, size, scales, align_corners)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return _interpolate(linear_taps, grad_out, ctx.in_size, ctx.size, ctx.scales,
                                ctx.align_corners, adjoint=True)
        return UpsampleLinearBackward.apply(grad_out, in_size=ctx.in_size, scales=ctx.scales,
                                            align_corners=ctx.align_corners)

    @staticmethod
    def cost(call):
        """Per axis pass 3 FLOPs (two products, one add) per element it writes; backward 2
        products per element of each pass and the scatter's adds (_weighted_flops)."""
        return _weighted_cost(call, "upsample_linear", 2)


class UpsampleLinearBackward(Function):
    """y = A^T g, the adjoint of UpsampleLinear (its weighted scatter-add, see there):
    g:(N, C, m_1, ..., m_k), y:(N, C, in_size). Used as UpsampleLinear's backward, and
    through it in double backward.

    dL/dg = A dL/dy = UpsampleLinear(dL/dy).
    Saves: nothing.
    """

    @staticmethod
    def forward(ctx, grad, in_size, scales, align_corners):
        ctx.size = _spatial(grad.shape, in_size)
        ctx.scales, ctx.align_corners = scales, align_corners
        return _interpolate(linear_taps, grad, in_size, ctx.size, scales, align_corners,
                            adjoint=True)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            in_size = _spatial(grad_out.shape, ctx.size)
            return _interpolate(linear_taps, grad_out, in_size, ctx.size, ctx.scales,
                                ctx.align_corners)
        return UpsampleLinear.apply(grad_out, size=ctx.size, scales=ctx.scales,
                                    align_corners=ctx.align_corners)

    @staticmethod
    def cost(call):
        """UpsampleLinear's backward FLOPs forward, and its forward FLOPs backward."""
        return _weighted_backward_cost(call, "upsample_linear_backward", 2)


class UpsampleBicubic(Function):
    """y = x resized by cubic convolution (A = -0.75) along each of its last k = len(size)
    axes (PyTorch's bicubic): x:(N, C, n_1, ..., n_k), y:(N, C, m_1, ..., m_k). Along one
    axis, with i, t and w_k of the module docstring for output position o,

        y[.., o] = sum_{k=0..3} w_k(t) * x[.., clamp(i - 1 + k, 0, n - 1)]

    the last axis first. y = A_H x A_W^T as for UpsampleLinear, with four non-zeros per row
    of A (fewer distinct ones at the border, where clamped indices repeat), so

        dL/dx = A_H^T dL/dy A_W: along each axis dL/dx[.., p] = sum over (o, k) with
                clamp(i(o) - 1 + k) = p of w_k(t(o)) * dL/dy[.., o]

    (UpsampleBicubicBackward, whose backward is this op again).
    Attrs: size, scales, align_corners (as UpsampleLinear).
    Saves: nothing.
    """

    @staticmethod
    def forward(ctx, x, size, scales, align_corners):
        ctx.in_size = _spatial(x.shape, size)
        ctx.size, ctx.scales, ctx.align_corners = size, scales, align_corners
        return _interpolate(cubic_taps, x, ctx.in_size, size, scales, align_corners)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return _interpolate(cubic_taps, grad_out, ctx.in_size, ctx.size, ctx.scales,
                                ctx.align_corners, adjoint=True)
        return UpsampleBicubicBackward.apply(grad_out, in_size=ctx.in_size,
                                             scales=ctx.scales,
                                             align_corners=ctx.align_corners)

    @staticmethod
    def cost(call):
        """Per axis pass 7 FLOPs (four products, three adds) per element it writes;
        backward 4 products per element of each pass and the scatter's adds."""
        return _weighted_cost(call, "upsample_bicubic", 4)


class UpsampleBicubicBackward(Function):
    """y = A^T g, the adjoint of UpsampleBicubic: g:(N, C, m_1, ..., m_k), y:(N, C, in_size).
    Used as UpsampleBicubic's backward, and through it in double backward.

    dL/dg = A dL/dy = UpsampleBicubic(dL/dy).
    Saves: nothing.
    """

    @staticmethod
    def forward(ctx, grad, in_size, scales, align_corners):
        ctx.size = _spatial(grad.shape, in_size)
        ctx.scales, ctx.align_corners = scales, align_corners
        return _interpolate(cubic_taps, grad, in_size, ctx.size, scales, align_corners,
                            adjoint=True)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            in_size = _spatial(grad_out.shape, ctx.size)
            return _interpolate(cubic_taps, grad_out, in_size, ctx.size, ctx.scales,
                                ctx.align_corners)
        return UpsampleBicubic.apply(grad_out, size=ctx.size, scales=ctx.scales,
                                     align_corners=ctx.align_corners)

    @staticmethod
    def cost(call):
        """UpsampleBicubic's backward FLOPs forward, and its forward FLOPs backward."""
        return _weighted_backward_cost(call, "upsample_bicubic_backward", 4)
