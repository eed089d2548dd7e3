"""Depthwise convolution computed directly (retrograd/ops/conv.py's im2col + GEMM path makes
one tiny matrix product per channel: a 1-row weight against 9-row columns, which BLAS runs far
below its speed, after copying the input nine times into X_col).

Depthwise: groups = C, each filter sees one input channel, O = C * m (m filters, the channel
multiplier, per channel): filter o reads channel c = o // m. With window cell (i, j) of
output (ho, wo) at row ho*sh - ph + i*dh, column wo*sw - pw + j*dw of x (padding: cells
outside x, which count 0 and are skipped):

    y[n, o, ho, wo]  = b[o] + sum_(i, j) W[o, 0, i, j] x[n, c, row, col]
    dL/dx[n, c, row, col] = sum over o = c*m .. c*m + m - 1 and the windows holding the
                            pixel of W[o, 0, i, j] dL/dy[n, o, ho, wo]
    dL/dW[o, 0, i, j] = sum_(n, ho, wo) dL/dy[n, o, ho, wo] x[n, c, row, col]

Every loop over wo runs over the outputs whose column falls inside x (computed once per
kernel column), so the innermost loop has no test and vectorizes at stride 1. The threads
share the (n, o) planes forward, the (n, c) planes for dL/dx, the filters o for dL/dW
(retrograd/_numba/policy.py decides when).
"""

import numba
import numpy as np

from retrograd._numba.policy import twins

__all__ = ["depthwise_conv2d", "depthwise_conv2d_backward", "col2im"]


@numba.njit(inline="always")
def _inside(out_w, w, j, sw, pw, dw):
    """[lo, hi): the outputs wo whose column wo*sw - pw + j*dw lies in [0, w)."""
    start = pw - j * dw
    lo = max(0, (start + sw - 1) // sw) if start > 0 else 0
    hi = min(out_w, (w - 1 + start) // sw + 1) if w - 1 + start >= 0 else 0
    return lo, max(lo, hi)


@twins()
def _forward(x, weight, bias, y, m, sh, sw, ph, pw, dh, dw):
    n, c, h, w = x.shape
    o_count, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
    ho, wo = y.shape[2], y.shape[3]
    for plane in numba.prange(n * o_count):
        a, o = plane // o_count, plane % o_count
        ch = o // m
        for oh in range(ho):
            out = y[a, o, oh]
            out[:] = bias[o]
            for i in range(kh):
                row = oh * sh - ph + i * dh
                if row < 0 or row >= h:
                    continue
                src = x[a, ch, row]
                for j in range(kw):
                    lo, hi = _inside(wo, w, j, sw, pw, dw)
                    k = weight[o, 0, i, j]
                    shift = j * dw - pw
                    if sw == 1:     # unit stride: a loop LLVM vectorizes
                        for q in range(lo, hi):
                            out[q] += k * src[q + shift]
                    else:
                        for q in range(lo, hi):
                            out[q] += k * src[q * sw + shift]


@twins()
def _grad_input(grad_out, weight, grad_x, m, sh, sw, ph, pw, dh, dw):
    n, c, h, w = grad_x.shape
    kh, kw = weight.shape[2], weight.shape[3]
    ho, wo = grad_out.shape[2], grad_out.shape[3]
    for plane in numba.prange(n * c):
        a, ch = plane // c, plane % c
        for o in range(ch * m, ch * m + m):
            for oh in range(ho):
                g = grad_out[a, o, oh]
                for i in range(kh):
                    row = oh * sh - ph + i * dh
                    if row < 0 or row >= h:
                        continue
                    dst = grad_x[a, ch, row]
                    for j in range(kw):
                        lo, hi = _inside(wo, w, j, sw, pw, dw)
                        k = weight[o, 0, i, j]
                        shift = j * dw - pw
                        if sw == 1:
                            for q in range(lo, hi):
                                dst[q + shift] += k * g[q]
                        else:
                            for q in range(lo, hi):
                                dst[q * sw + shift] += k * g[q]


@twins(fastmath={"reassoc"})
def _grad_weight(grad_out, x, grad_w, m, sh, sw, ph, pw, dh, dw):
    n, c, h, w = x.shape
    o_count, kh, kw = grad_w.shape[0], grad_w.shape[2], grad_w.shape[3]
    ho, wo = grad_out.shape[2], grad_out.shape[3]
    for o in numba.prange(o_count):
        ch = o // m
        for i in range(kh):
            for j in range(kw):
                lo, hi = _inside(wo, w, j, sw, pw, dw)
                shift = j * dw - pw
                total = grad_w.dtype.type(0)
                for a in range(n):
                    for oh in range(ho):
                        row = oh * sh - ph + i * dh
                        if row < 0 or row >= h:
                            continue
                        g = grad_out[a, o, oh]
                        src = x[a, ch, row]
                        if sw == 1:
                            for q in range(lo, hi):
                                total += g[q] * src[q + shift]
                        else:
                            for q in range(lo, hi):
                                total += g[q] * src[q * sw + shift]
                grad_w[o, 0, i, j] = total


def depthwise_conv2d(x, weight, bias, out_size, stride, padding, dilation):
    """y of a depthwise Conv2d (groups = C, weight (C*m, 1, kh, kw)) on C-contiguous x and
    weight of one dtype; bias (O,) or None; padding (top, left) (bottom and right follow from
    out_size)."""
    n, c = x.shape[:2]
    o = weight.shape[0]
    y = np.empty((n, o) + tuple(out_size), dtype=x.dtype)
    b = bias.astype(x.dtype, copy=False) if bias is not None else np.zeros(o, x.dtype)
    _forward.pick(x.size)(x, weight, b, y, o // c, *stride, *padding, *dilation)
    return y


def depthwise_conv2d_backward(grad_out, x, weight, x_shape, w_shape, stride, padding,
                              dilation):
    """(dL/dx, dL/dW) of a depthwise Conv2d, each None when its input (weight for dL/dx, x
    for dL/dW) is None; grad_out, x and weight C-contiguous of one dtype."""
    m = w_shape[0] // x_shape[1]
    grad_x = grad_w = None
    if weight is not None:
        grad_x = np.zeros(x_shape, dtype=grad_out.dtype)
        _grad_input.pick(grad_x.size)(grad_out, weight, grad_x, m, *stride, *padding, *dilation)
    if x is not None:
        grad_w = np.empty(w_shape, dtype=grad_out.dtype)
        _grad_weight.pick(x.size)(grad_out, x, grad_w, m, *stride, *padding, *dilation)
    return grad_x, grad_w


# ------------------------------------------------------------------ col2im
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
