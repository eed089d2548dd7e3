"""Depthwise convolution computed directly, and col2im for strided convolutions (and, from
retrograd/_numba/dense_conv.py, the dense 3x3 and 5x5 convolutions for few input channels)
(retrograd/ops/conv.py's im2col + GEMM path makes one tiny matrix product per channel for a
depthwise convolution: a 1-row weight against 9-row columns, which BLAS runs far below its
speed, after copying the input nine times into X_col).

Depthwise, stride 1: groups = C, each filter sees one input channel, O = C * m (m filters,
the channel multiplier, per channel): filter o reads channel c = o // m. With x_pad the
zero-padded input (Hp x Wp per plane) and the *wide* output layout of the row layout
(ops/conv.py: every output row computed over all Wp columns, the last Wp - Wo thrown away),
each kernel cell (i, j) is one long, contiguous multiply-add over a whole plane (indexed by
unsigned loop counters into shifted views: a signed index makes Numba test it for
wrap-around, which stopped LLVM from vectorizing: the forward ran 9x slower):

    y_wide[n, o, t] = b[o] + sum_(i, j) W[o, 0, i, j] x_pad[n, c, t + i*dh*Wp + j*dw]
    dL/dx_pad[n, c, t + i*dh*Wp + j*dw] += W[o, 0, i, j] dL/dy_wide[n, o, t]   (o of c)
    dL/dW[o, 0, i, j] = sum_(n, t) dL/dy_wide[n, o, t] x_pad[n, c, t + i*dh*Wp + j*dw]

for t = ho*Wp + w over the plane (dL/dy_wide is 0 on the thrown-away columns, so they add
nothing; t stops where the shifted index would leave the plane, which only cuts such
columns). Loops of Ho*Wp iterations vectorize; loops over one output row (32 outputs) spent
more time starting than computing. The threads share the (n, o) planes forward, the (n, c)
planes for dL/dx and the filters for dL/dW (retrograd/_numba/policy.py decides when).
Strided depthwise convolutions keep the GEMM path.
"""

import numba
import numpy as np

from retrograd._numba.dense_conv import (_padded_planes, dense_conv2d,
                                         dense_conv2d_grad_weight, wide_planes)
from retrograd._numba.policy import parallel, twins

__all__ = ["depthwise_conv2d", "depthwise_conv2d_backward", "col2im", "col2im_wide",
           "dense_conv2d", "dense_conv2d_grad_weight", "parallel", "wide_planes"]


@numba.njit(inline="always")
def _span(length, plane, shift):
    """How many t of 0..length-1 keep t + shift inside a plane of ``plane`` elements."""
    return max(0, min(length, plane - shift))


@twins()
def _forward(x_pad, weight, bias, y_wide, m, wp, dh, dw):
    n = x_pad.shape[0]
    o_count, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
    length = y_wide.shape[2]
    plane = x_pad.shape[2]
    for index in numba.prange(n * o_count):
        a, o = index // o_count, index % o_count
        src, out = x_pad[a, o // m], y_wide[a, o]
        for t in range(np.uint64(length)):
            out[t] = bias[o]
        for i in range(kh):
            for j in range(kw):
                k, shift = weight[o, 0, i, j], i * dh * wp + j * dw
                shifted = src[shift:]
                for t in range(np.uint64(_span(length, plane, shift))):
                    out[t] += k * shifted[t]


@twins()
def _grad_input(grad_wide, weight, grad_pad, m, wp, dh, dw):
    n, c, plane = grad_pad.shape
    kh, kw = weight.shape[2], weight.shape[3]
    length = grad_wide.shape[2]
    for index in numba.prange(n * c):
        a, ch = index // c, index % c
        dst = grad_pad[a, ch]
        for o in range(ch * m, ch * m + m):
            g = grad_wide[a, o]
            for i in range(kh):
                for j in range(kw):
                    k, shift = weight[o, 0, i, j], i * dh * wp + j * dw
                    shifted = dst[shift:]
                    for t in range(np.uint64(_span(length, plane, shift))):
                        shifted[t] += k * g[t]


@twins(fastmath={"reassoc"})
def _grad_weight(grad_wide, x_pad, grad_w, m, wp, dh, dw):
    n, plane = x_pad.shape[0], x_pad.shape[2]
    o_count, kh, kw = grad_w.shape[0], grad_w.shape[2], grad_w.shape[3]
    length = grad_wide.shape[2]
    for o in numba.prange(o_count):
        for i in range(kh):
            for j in range(kw):
                shift = i * dh * wp + j * dw
                total = grad_w.dtype.type(0)
                for a in range(n):
                    g, shifted = grad_wide[a, o], x_pad[a, o // m][shift:]
                    for t in range(np.uint64(_span(length, plane, shift))):
                        total += g[t] * shifted[t]
                grad_w[o, 0, i, j] = total


def depthwise_conv2d(x, weight, bias, out_size, padding, dilation):
    """y of a stride-1 depthwise Conv2d (groups = C, weight (C*m, 1, kh, kw)) on x and weight
    of one dtype; bias (O,) or None; padding ((top, bottom), (left, right))."""
    n, c = x.shape[:2]
    o = weight.shape[0]
    x_pad, wp = _padded_planes(x, padding)
    y_wide = np.empty((n, o, out_size[0] * wp), dtype=x.dtype)
    b = bias.astype(x.dtype, copy=False) if bias is not None else np.zeros(o, x.dtype)
    _forward.pick(y_wide.size)(x_pad, np.ascontiguousarray(weight), b, y_wide, o // c, wp,
                               *dilation)
    return np.ascontiguousarray(y_wide.reshape(n, o, out_size[0], wp)[..., :out_size[1]])


def depthwise_conv2d_backward(grad_out, x, weight, x_shape, w_shape, padding, dilation):
    """(dL/dx, dL/dW) of a stride-1 depthwise Conv2d, each None when its input (weight for
    dL/dx, x for dL/dW) is None; arrays of one dtype."""
    n, c, h, w = x_shape
    o = w_shape[0]
    (top, bottom), (left, right) = padding
    hp, wp = h + top + bottom, w + left + right
    grad_wide = wide_planes(grad_out, wp)
    grad_x = grad_w = None
    if weight is not None:
        grad_pad = np.zeros((n, c, hp * wp), dtype=grad_out.dtype)
        _grad_input.pick(grad_pad.size)(grad_wide, np.ascontiguousarray(weight), grad_pad,
                                        o // c, wp, *dilation)
        grad_x = np.ascontiguousarray(
            grad_pad.reshape(n, c, hp, wp)[:, :, top:top + h, left:left + w])
    if x is not None:
        x_pad, _ = _padded_planes(x.reshape(x_shape), padding)
        grad_w = np.empty(w_shape, dtype=grad_out.dtype)
        _grad_weight.pick(x_pad.size)(grad_wide, x_pad, grad_w, o // c, wp, *dilation)
    return grad_x, grad_w


# ------------------------------------------------------------------ col2im
@numba.njit(inline="always")
def _inside(out_w, w, j, sw, pw, dw):
    """[lo, hi): the outputs wo whose column wo*sw - pw + j*dw lies in [0, w)."""
    start = pw - j * dw
    lo = max(0, (start + sw - 1) // sw) if start > 0 else 0
    hi = min(out_w, (w - 1 + start) // sw + 1) if w - 1 + start >= 0 else 0
    return lo, max(lo, hi)


@twins()
def _col2im(cols, grad_x, kh, kw, ho, wo, sh, sw, ph, pw, dh, dw):
    n, c, h, w = grad_x.shape
    for plane in numba.prange(c * n):
        ch, a = plane // n, plane % n
        dst = grad_x[a, ch]
        for i in range(kh):
            for j in range(kw):
                src = cols[(ch * kh + i) * kw + j, a]
                lo, hi = _inside(wo, w, j, sw, pw, dw)
                shift = j * dw - pw
                for oh in range(ho):
                    row = oh * sh - ph + i * dh
                    if row < 0 or row >= h:
                        continue
                    if sw == 1:
                        for q in range(lo, hi):
                            dst[row, q + shift] += src[oh, q]
                    else:
                        for q in range(lo, hi):
                            dst[row, q * sw + shift] += src[oh, q]


def col2im(cols, x_shape, kernel, out_size, stride, padding, dilation):
    """dL/dx:(N, C, H, W) from dL/dX_col:(C*kh*kw, N*Ho*Wo) (rows (c, i, j), columns (n, ho,
    wo), C-contiguous): each entry added to the pixel of x it was copied from, entries that
    came from the padding dropped; padding is (top, left). The reference: col2im in
    retrograd/ops/conv.py (Conv2d's docstring) and _reference_col2im."""
    grad_x = np.zeros(x_shape, dtype=cols.dtype)
    n = x_shape[0]
    windows = cols.reshape(cols.shape[0], n, *out_size)
    _col2im.pick(grad_x.size)(windows, grad_x, *kernel, *out_size, *stride, *padding,
                              *dilation)
    return grad_x


@twins()
def _add_windows(cols, grad_pad, kh, kw, wp, dh, dw):
    chunk, c_count, plane = grad_pad.shape
    length = cols.shape[2]
    for job in numba.prange(chunk * c_count):
        a, c = job // c_count, job % c_count
        dst = grad_pad[a, c]
        for i in range(kh):
            for j in range(kw):
                shift = i * dh * wp + j * dw
                src, shifted = cols[(c * kh + i) * kw + j, a], dst[shift:]
                for t in range(np.uint64(_span(length, plane, shift))):
                    shifted[t] += src[t]


def col2im_wide(cols, grad_pad, kernel, wp, dilation):
    """Add dL/dX_col of a stride-1 convolution in the wide layout, cols:(C*kh*kw, n, Ho*Wp)
    (rows (c, i, j), columns (sample, ho, w) over every padded column w < Wp), into
    grad_pad:(n, C, Hp*Wp), the zero-padded dL/dx of those n samples, in place:

        dL/dx_pad[a, c, t + i*dh*Wp + j*dw] += dL/dX_col[(c, i, j), a, t]

    one contiguous run per (c, i, j) and sample (col2im's short row runs, 5x5 kernels on
    10-wide outputs, took 2.8 ms for LeNet's 20 -> 50 layer, these 0.85 ms). The runs stop
    where they would leave the plane, which only cuts thrown-away columns (zero in cols when
    dL/dy_wide was)."""
    _add_windows.pick(grad_pad.size)(cols, grad_pad, *kernel, wp, *dilation)

