"""Max and average pooling, window by window (the NumPy path in retrograd/ops/pool.py makes
kh*kw passes over strided views of a padded copy of x, and its backward as many passes over
a padded gradient). These kernels read x where it is, with no padded copy: a window cell
outside the input is skipped (it would be -inf for max, 0 for the average's sum). The
threads share the (n, c) planes (retrograd/_numba/policy.py decides when). Windows and
padding as in retrograd/ops/pool.py's module docstring: cell (i, j) of window (ho, wo) is
row ho*sh - ph + i*dh, column wo*sw - pw + j*dw.
"""

import numba
import numpy as np

from retrograd._numba.policy import twins

__all__ = ["max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward"]


@twins()
def _max_pool(x, y, argmax, first, kh, kw, sh, sw, ph, pw, dh, dw):
    """MaxPool2d.forward: y = the window's max, argmax = its kernel offset i*kw + j. The first
    cell inside the input starts the search (``first``, as PyTorch); a later cell wins when
    it is greater, or NaN (the last NaN wins, and y is NaN: np.maximum's propagation)."""
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for plane in numba.prange(n * c):
        a, b = plane // c, plane % c
        for oh in range(ho):
            for ow in range(wo):
                best = -np.inf
                best_at = first[oh, ow]
                for i in range(kh):
                    row = oh * sh - ph + i * dh
                    if row < 0 or row >= h:
                        continue
                    for j in range(kw):
                        col = ow * sw - pw + j * dw
                        if col < 0 or col >= w:
                            continue
                        v = x[a, b, row, col]
                        if v != v or v > best:
                            best, best_at = v, i * kw + j
                y[a, b, oh, ow] = best
                argmax[a, b, oh, ow] = best_at


@twins()
def _max_pool_inside(x, y, argmax, kh, kw, sh, sw, dh, dw):
    """_max_pool for windows that all lie inside x (no padding, no ceil_mode overhang): no
    cell needs a bounds test, and each window starts at its cell (0, 0) (its first cell)."""
    n, c = x.shape[0], x.shape[1]
    ho, wo = y.shape[2], y.shape[3]
    for plane in numba.prange(n * c):
        a, b = plane // c, plane % c
        src, best_of, best_at_of = x[a, b], y[a, b], argmax[a, b]
        for oh in range(ho):
            for ow in range(wo):
                best = src[oh * sh, ow * sw]
                best_at = 0
                for i in range(kh):
                    for j in range(kw):
                        v = src[oh * sh + i * dh, ow * sw + j * dw]
                        if v > best or v != v:
                            best, best_at = v, i * kw + j
                best_of[oh, ow] = best
                best_at_of[oh, ow] = best_at


@twins()
def _max_pool_2x2(x, y, argmax):
    """_max_pool_inside for 2x2 windows with stride 2 (no padding, no dilation): the four
    cells unrolled and compared branch-free, so that LLVM vectorizes along the output row
    (3.3x faster on 64x32x28x28 than the general loop, whose compares branch on the data)."""
    n, c = x.shape[:2]
    ho, wo = y.shape[2], y.shape[3]
    for plane in numba.prange(n * c):
        a, b = plane // c, plane % c
        src, best_of, at_of = x[a, b], y[a, b], argmax[a, b]
        for oh in range(ho):
            top, bottom = src[2 * oh], src[2 * oh + 1]
            best_row, at_row = best_of[oh], at_of[oh]
            for ow in range(wo):
                best = top[2 * ow]
                at = 0
                v = top[2 * ow + 1]
                take = (v > best) | (v != v)
                best, at = (v, 1) if take else (best, at)
                v = bottom[2 * ow]
                take = (v > best) | (v != v)
                best, at = (v, 2) if take else (best, at)
                v = bottom[2 * ow + 1]
                take = (v > best) | (v != v)
                best, at = (v, 3) if take else (best, at)
                best_row[ow] = best
                at_row[ow] = at


@twins()
def _max_pool_2x2_backward(grad_out, argmax, grad_x):
    """_max_pool_backward for _max_pool_2x2: the windows do not overlap, so every cell of x
    is written once, with its window's gradient or 0 (no zeroed array first, no adds); a
    last row or column no window reaches (odd H or W) gets 0."""
    n, c, h, w = grad_x.shape
    ho, wo = grad_out.shape[2], grad_out.shape[3]
    zero = grad_x.dtype.type(0)
    for plane in numba.prange(n * c):
        a, b = plane // c, plane % c
        g_of, at_of, dst = grad_out[a, b], argmax[a, b], grad_x[a, b]
        for oh in range(ho):
            g_row, at_row = g_of[oh], at_of[oh]
            top, bottom = dst[2 * oh], dst[2 * oh + 1]
            for col in range(2 * wo):     # consecutive stores; window col // 2
                g, at, j = g_row[col >> 1], at_row[col >> 1], col & 1
                top[col] = g if at == j else zero
                bottom[col] = g if at == j + 2 else zero
            for col in range(2 * wo, w):
                top[col] = zero
                bottom[col] = zero
        for row in range(2 * ho, h):
            for col in range(w):
                dst[row, col] = zero


@twins()
def _max_pool_backward(grad_out, argmax, grad_x, kernel_w, sh, sw, ph, pw, dh, dw):
    """MaxPool2d.backward: each window's gradient goes to its argmax cell (none when that
    cell is padding)."""
    n, c, h, w = grad_x.shape
    ho, wo = grad_out.shape[2], grad_out.shape[3]
    for plane in numba.prange(n * c):
        a, b = plane // c, plane % c
        for oh in range(ho):
            for ow in range(wo):
                k = argmax[a, b, oh, ow]
                row = oh * sh - ph + (k // kernel_w) * dh
                col = ow * sw - pw + (k % kernel_w) * dw
                if 0 <= row < h and 0 <= col < w:
                    grad_x[a, b, row, col] += grad_out[a, b, oh, ow]


@twins()
def _avg_pool(x, y, divisor, kh, kw, sh, sw, ph, pw):
    """AvgPool2d.forward: the window's sum over cells inside x, in row-major cell order as
    the NumPy passes add them, divided by divisor[ho, wo]."""
    n, c, h, w = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for plane in numba.prange(n * c):
        a, b = plane // c, plane % c
        for oh in range(ho):
            for ow in range(wo):
                total = x.dtype.type(0)
                for i in range(kh):
                    row = oh * sh - ph + i
                    if 0 <= row < h:
                        for j in range(kw):
                            col = ow * sw - pw + j
                            if 0 <= col < w:
                                total += x[a, b, row, col]
                y[a, b, oh, ow] = total / divisor[oh, ow]


@twins()
def _avg_pool_backward(grad_out, divisor, grad_x, kh, kw, sh, sw, ph, pw):
    """AvgPool2d.backward: dL/dy / divisor added to every cell of the window inside x."""
    n, c, h, w = grad_x.shape
    ho, wo = grad_out.shape[2], grad_out.shape[3]
    for plane in numba.prange(n * c):
        a, b = plane // c, plane % c
        for oh in range(ho):
            for ow in range(wo):
                share = grad_out[a, b, oh, ow] / divisor[oh, ow]
                for i in range(kh):
                    row = oh * sh - ph + i
                    if 0 <= row < h:
                        for j in range(kw):
                            col = ow * sw - pw + j
                            if 0 <= col < w:
                                grad_x[a, b, row, col] += share


def max_pool2d(x, out_size, first, kernel, stride, padding, dilation):
    """(y, argmax) of MaxPool2d.forward for a C-contiguous x:(N, C, H, W); ``first``: the
    (Ho, Wo) starting offsets, whose dtype the argmax takes."""
    y = np.empty(x.shape[:2] + out_size, dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=first.dtype)
    inside = _windows_inside(x.shape[2:], out_size, kernel, stride, padding, dilation)
    if inside and _two_by_two(kernel, stride, padding, dilation):
        _max_pool_2x2.pick(x.size)(x, y, argmax)
    elif inside:
        _max_pool_inside.pick(x.size)(x, y, argmax, *kernel, *stride, *dilation)
    else:
        _max_pool.pick(x.size)(x, y, argmax, first, *kernel, *stride, *padding, *dilation)
    return y, argmax


def _windows_inside(in_size, out_size, kernel, stride, padding, dilation):
    """Whether every window lies inside the input (no padding; the last window ends inside)."""
    return all(padding[a] == 0 and (out_size[a] - 1) * stride[a] + (kernel[a] - 1) * dilation[a]
               < in_size[a] for a in range(2))


def _two_by_two(kernel, stride, padding, dilation):
    """Whether the windows are 2x2 with stride 2, no padding and no dilation (the windows of
    a floor-mode pool then lie inside x)."""
    return tuple(kernel) == tuple(stride) == (2, 2) and tuple(padding) == (0, 0) \
        and tuple(dilation) == (1, 1)


def max_pool2d_backward(grad_out, argmax, x_shape, kernel, stride, padding, dilation):
    """dL/dx:(N, C, H, W) of MaxPool2d from a C-contiguous dL/dy and the saved argmax."""
    if _two_by_two(kernel, stride, padding, dilation) \
            and all(2 * grad_out.shape[a] <= x_shape[a] for a in (2, 3)):
        grad_x = np.empty(x_shape, dtype=grad_out.dtype)
        _max_pool_2x2_backward.pick(grad_x.size)(grad_out, argmax, grad_x)
        return grad_x
    kernel_w = kernel[1]
    grad_x = np.zeros(x_shape, dtype=grad_out.dtype)
    _max_pool_backward.pick(grad_x.size)(grad_out, argmax, grad_x, kernel_w, *stride, *padding,
                                         *dilation)
    return grad_x


def avg_pool2d(x, out_size, divisor, kernel, stride, padding):
    """AvgPool2d.forward for a C-contiguous x; divisor:(Ho, Wo) in x's dtype."""
    y = np.empty(x.shape[:2] + out_size, dtype=x.dtype)
    _avg_pool.pick(x.size)(x, y, divisor, *kernel, *stride, *padding)
    return y


def avg_pool2d_backward(grad_out, divisor, x_shape, kernel, stride, padding):
    """dL/dx:(N, C, H, W) of AvgPool2d from a C-contiguous dL/dy."""
    grad_x = np.zeros(x_shape, dtype=grad_out.dtype)
    _avg_pool_backward.pick(grad_x.size)(grad_out, divisor, grad_x, *kernel, *stride, *padding)
    return grad_x
