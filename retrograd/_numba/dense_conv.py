"""Dense 3x3 and 5x5 stride-1 convolutions computed directly, for convolutions with few input
channels (the NumPy path: retrograd/ops/conv.py's row layout and im2col + GEMM). With 1 to 4
input channels the GEMM's inner dimension is 3 to 20 (row layout) or 9 to 100 (im2col), too
thin for BLAS: a 3 -> 16 stem ran at 23-30 GFLOP/s over both cores, where these loops run at
55-75 on one (measured: docs/performance.md, 'Direct convolutions for few channels'). With
16 input channels they pay only on all threads (ops/conv.py, _DENSE_MAX_INPUTS and
_DENSE_MAX_INPUTS_PARALLEL).

With x_pad the zero-padded input (each plane Hp x Wp, seen flat) and the *wide* output
layout of ops/conv.py (every output row computed over all Wp columns, the last two thrown
away: Ho = Hp - 2, Wo = Wp - 2), each output plane is, over the input channels, one long
pass of nine taps:

    y_wide[n, o, t] = sum_c sum_(i, j) W[o, c, i, j] x_pad[n, c, t + i*Wp + j]

for t < Ho*Wp - 2 (the last two t are thrown-away columns, and would read past the plane).
Each pass serves two filters: the nine values of x_pad at t are loaded once for both (an odd
count of filters gets a zero filter added), and the output planes are read and written once
per input channel. The taps are indexed through nine shifted views with an unsigned counter
(retrograd/_numba/__init__.py, the house rules). A second pass (_crop) copies the kept
columns into y and adds the bias: NumPy's strided add did the same 1.5-2x slower.

A 5x5 kernel is done by kernel rows: five passes of five taps per input channel (the
thrown-away columns are the last four; the last four t are skipped).

dL/dW is nine (25) dot products per (filter, input channel) over every sample:

    dL/dW[o, c, i, j] = sum_(n, t) dL/dy_wide[n, o, t] x_pad[n, c, t + i*Wp + j]

with dL/dy_wide zero on the thrown-away columns; each plane's nine sums are float32 vector
sums ("reassoc", as BLAS accumulates them), added over the samples in float64. dL/dx needs
no kernel of its own: it is this forward convolution of dL/dy with the flipped kernel
(ops/conv.py, _grad_input_by_conv).
"""

import numba
import numpy as np

from retrograd._numba.policy import twins

__all__ = ["dense_conv2d", "dense_conv2d_grad_weight"]

_SUMS = {"contract", "reassoc"}


@numba.njit(inline="always")
def _taps(weight, o, c):
    """W[o, c] as a tuple of nine values, (i, j) at 3*i + j."""
    return (weight[o, c, 0, 0], weight[o, c, 0, 1], weight[o, c, 0, 2],
            weight[o, c, 1, 0], weight[o, c, 1, 1], weight[o, c, 1, 2],
            weight[o, c, 2, 0], weight[o, c, 2, 1], weight[o, c, 2, 2])


@numba.njit(inline="always")
def _shifted(plane, wp):
    """The nine views of a flat padded plane that tap (i, j) reads, starting at i*Wp + j."""
    return (plane[0:], plane[1:], plane[2:],
            plane[wp:], plane[wp + 1:], plane[wp + 2:],
            plane[2 * wp:], plane[2 * wp + 1:], plane[2 * wp + 2:])


@numba.njit(inline="always")
def _at(views, t):
    """The nine tap values at output position t."""
    return (views[0][t], views[1][t], views[2][t], views[3][t], views[4][t], views[5][t],
            views[6][t], views[7][t], views[8][t])


@numba.njit(inline="always")
def _dot(k, v):
    return (k[0] * v[0] + k[1] * v[1] + k[2] * v[2] + k[3] * v[3] + k[4] * v[4]
            + k[5] * v[5] + k[6] * v[6] + k[7] * v[7] + k[8] * v[8])


@numba.njit(inline="always")
def _pair_planes(y_wide, job, pairs):
    """A forward job's sample n, first filter o and two output planes, zeroed."""
    n, o = job // pairs, (job % pairs) * 2
    first, second = y_wide[n, o], y_wide[n, o + 1]
    first[:] = 0
    second[:] = 0
    return n, o, first, second


@twins(fastmath={"contract"})
def _forward(x_pad, weight, y_wide, wp):
    n_size, c_size = x_pad.shape[0], x_pad.shape[1]
    pairs = y_wide.shape[1] // 2
    span = np.uint64(y_wide.shape[2] - 2)
    for job in numba.prange(n_size * pairs):
        n, o, first, second = _pair_planes(y_wide, job, pairs)
        for c in range(c_size):
            views = _shifted(x_pad[n, c], wp)
            a, b = _taps(weight, o, c), _taps(weight, o + 1, c)
            for t in range(span):
                values = _at(views, t)
                first[t] += _dot(a, values)
                second[t] += _dot(b, values)


@numba.njit(fastmath=_SUMS, error_model="numpy")
def _plane_sums(grad, plane, wp, span):
    """sum_t grad[t] * plane[t + i*Wp + j] for the nine taps (i, j), in grad's dtype. Through
    three row views, each read at t, t + 1, t + 2: the nine views of the forward ran these
    sums 1.3-1.5x slower (measured on 16 -> 16 channels, 32x32)."""
    zero = grad.dtype.type(0)
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = zero
    r0, r1, r2 = plane[0:], plane[wp:], plane[2 * wp:]
    for t in range(span):
        d = grad[t]
        s0 += d * r0[t]
        s1 += d * r0[t + 1]
        s2 += d * r0[t + 2]
        s3 += d * r1[t]
        s4 += d * r1[t + 1]
        s5 += d * r1[t + 2]
        s6 += d * r2[t]
        s7 += d * r2[t + 1]
        s8 += d * r2[t + 2]
    return s0, s1, s2, s3, s4, s5, s6, s7, s8


@twins()
def _grad_weight(grad_wide, x_pad, grad_w, wp):
    n_size, c_size = x_pad.shape[0], x_pad.shape[1]
    span = np.uint64(grad_wide.shape[2] - 2)
    for job in numba.prange(grad_w.shape[0] * c_size):
        o, c = job // c_size, job % c_size
        total = np.zeros(9)
        for n in range(n_size):
            sums = _plane_sums(grad_wide[n, o], x_pad[n, c], wp, span)
            for k in range(9):
                total[k] += sums[k]
        for k in range(9):
            grad_w[o, c, k // 3, k % 3] = total[k]


@numba.njit(inline="always")
def _row_taps(weight, o, c, i):
    """Row i of a 5x5 W[o, c], five values."""
    return (weight[o, c, i, 0], weight[o, c, i, 1], weight[o, c, i, 2], weight[o, c, i, 3],
            weight[o, c, i, 4])


@numba.njit(inline="always")
def _five(row, t):
    return row[t], row[t + 1], row[t + 2], row[t + 3], row[t + 4]


@numba.njit(inline="always")
def _dot5(k, v):
    return k[0] * v[0] + k[1] * v[1] + k[2] * v[2] + k[3] * v[3] + k[4] * v[4]


@twins(fastmath={"contract"})
def _forward5(x_pad, weight, y_wide, wp):
    n_size, c_size = x_pad.shape[0], x_pad.shape[1]
    pairs = y_wide.shape[1] // 2
    span = np.uint64(y_wide.shape[2] - 4)
    for job in numba.prange(n_size * pairs):
        n, o, first, second = _pair_planes(y_wide, job, pairs)
        for c in range(c_size):
            for i in range(5):
                row = x_pad[n, c][i * wp:]
                a, b = _row_taps(weight, o, c, i), _row_taps(weight, o + 1, c, i)
                for t in range(span):
                    values = _five(row, t)
                    first[t] += _dot5(a, values)
                    second[t] += _dot5(b, values)


@numba.njit(fastmath=_SUMS, error_model="numpy")
def _row_sums(grad, row, span):
    """sum_t grad[t] * row[t + j] for j < 5, in grad's dtype."""
    zero = grad.dtype.type(0)
    s0 = s1 = s2 = s3 = s4 = zero
    for t in range(span):
        d = grad[t]
        s0 += d * row[t]
        s1 += d * row[t + 1]
        s2 += d * row[t + 2]
        s3 += d * row[t + 3]
        s4 += d * row[t + 4]
    return s0, s1, s2, s3, s4


@twins()
def _grad_weight5(grad_wide, x_pad, grad_w, wp):
    n_size, c_size = x_pad.shape[0], x_pad.shape[1]
    span = np.uint64(grad_wide.shape[2] - 4)
    for job in numba.prange(grad_w.shape[0] * c_size):
        o, c = job // c_size, job % c_size
        total = np.zeros((5, 5))
        for n in range(n_size):
            for i in range(5):
                sums = _row_sums(grad_wide[n, o], x_pad[n, c][i * wp:], span)
                for j in range(5):
                    total[i, j] += sums[j]
        for i in range(5):
            for j in range(5):
                grad_w[o, c, i, j] = total[i, j]


_FORWARD = {3: _forward, 5: _forward5}
_GRAD_WEIGHT = {3: _grad_weight, 5: _grad_weight5}


def _padded_planes(x, padding):
    """x:(N, C, H, W) zero-padded by ((top, bottom), (left, right)), as (N, C, Hp*Wp), and
    Wp."""
    (top, bottom), (left, right) = padding
    n, c, h, w = x.shape
    x_pad = np.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    x_pad[:, :, top:top + h, left:left + w] = x
    return x_pad.reshape(n, c, -1), x_pad.shape[3]


def _even_filters(weight):
    """weight (O, C, k, k) C-contiguous, with a zero filter added when O is odd (the forward
    computes filters in pairs)."""
    weight = np.ascontiguousarray(weight)
    if weight.shape[0] % 2 == 0:
        return weight
    return np.concatenate([weight, np.zeros((1,) + weight.shape[1:], weight.dtype)])


@twins()
def _crop(y_wide, bias, y, wp):
    n_size, o_size, ho, wo = y.shape
    for plane in numba.prange(n_size * o_size):
        n, o = plane // o_size, plane % o_size
        wide, shift = y_wide[n, o], bias[o]
        for h in range(ho):
            row, start = y[n, o, h], h * wp
            for w in range(wo):
                row[w] = wide[start + w] + shift


@twins()
def _widen(grad_out, wide):
    n_size, o_size, ho, wo = grad_out.shape
    for plane in numba.prange(n_size * o_size):
        n, o = plane // o_size, plane % o_size
        for h in range(ho):
            src, dst = grad_out[n, o, h], wide[n, o, h]
            for w in range(wo):
                dst[w] = src[w]
            for w in range(wo, dst.size):
                dst[w] = 0


def wide_planes(grad_out, wp):
    """dL/dy:(N, O, Ho, Wo) in the wide layout, (N, O, Ho*Wp) with zeros on the thrown-away
    columns: one compiled pass (NumPy's zeros then strided copy took 1.2-1.6x as long: 0.48
    against 0.30 ms for LeNet's first layer's (64, 20, 28, 28))."""
    n, o, ho, _ = grad_out.shape
    wide = np.empty((n, o, ho, wp), dtype=grad_out.dtype)
    _widen.pick(wide.size)(np.ascontiguousarray(grad_out), wide)
    return wide.reshape(n, o, -1)


def dense_conv2d(x, weight, bias, padding):
    """(y:(N, O, Ho, Wo), x_pad:(N, C, Hp*Wp)) of a stride-1 Conv2d with one group and a 3x3
    or 5x5 kernel on x and weight (O, C, k, k) of one float dtype, bias (O,) or None, padding
    ((top, bottom), (left, right)); x_pad is what dense_conv2d_grad_weight takes."""
    n, o, k = x.shape[0], weight.shape[0], weight.shape[2]
    x_pad, wp = _padded_planes(x, padding)
    ho = x_pad.shape[2] // wp - (k - 1)
    filters = _even_filters(weight)
    y_wide = np.empty((n, filters.shape[0], ho * wp), dtype=x.dtype)
    _FORWARD[k].pick(y_wide.size)(x_pad, filters, y_wide, wp)
    y = np.empty((n, o, ho, wp - (k - 1)), dtype=x.dtype)
    b = bias.astype(x.dtype, copy=False) if bias is not None else np.zeros(o, x.dtype)
    _crop.pick(y.size)(y_wide, b, y, wp)
    return y, x_pad


def dense_conv2d_grad_weight(grad_out, x_pad, w_shape):
    """dL/dW (w_shape) of dense_conv2d from dL/dy:(N, O, Ho, Wo) and the x_pad it returned,
    of one dtype."""
    k = w_shape[2]
    wp = grad_out.shape[3] + k - 1
    grad_w = np.empty(w_shape, dtype=grad_out.dtype)
    _GRAD_WEIGHT[k].pick(x_pad.size)(wide_planes(grad_out, wp), x_pad, grad_w, wp)
    return grad_w
