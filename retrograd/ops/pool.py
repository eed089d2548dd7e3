"""Pooling over (H, W): MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d.

Notation: x:(N, C, H, W), kernel (kh, kw), stride (sh, sw), padding (ph, pw) on both sides,
dilation (dh, dw), y:(N, C, Ho, Wo). Window (ho, wo) covers the rows ho*sh - ph + i*dh,
i = 0..kh-1 (and the columns alike). The output size is PyTorch's:

    Ho = floor((H + 2*ph - dh*(kh - 1) - 1 + (sh - 1 if ceil_mode else 0)) / sh) + 1,
    and with ceil_mode, Ho -= 1 if the last window would start at or beyond H + ph
    (every window must start inside the input or its left padding).

With ceil_mode the last window may hang over the right padding; those cells are outside the
input and never count. Max and average pooling run as kh*kw vectorized passes, one per
kernel offset (i, j), over strided views of the padded input (``conv.offset_view``); their
backward adds into the same views. The 1-D poolings of ``nn.functional`` are these with H = 1.
``max_pool2d_reference_backward`` and ``avg_pool2d_reference_backward`` at the end of this
file are the same backwards written window by window, as the docstrings state them; the
tests check the fast kernels against them. (AdaptiveAvgPool2d's backward is already its
two-line linear rule, AdaptiveMaxPool2d's one scatter-add.) Derivations: docs/ops/conv.md,
'Pooling'.
"""

import numpy as np

from retrograd._fast import compiled_for
from retrograd.autograd.cost import Cost, call_arg, shape_text
from retrograd.autograd.function import Function
from retrograd.ops.conv import _pad, _unpad, offset_view

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
           "max_pool2d_reference_backward", "avg_pool2d_reference_backward",
           "pool_output_size", "adaptive_windows"]


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output length along one axis (see the module docstring).

    Example:
        >>> pool_output_size(5, 2, 2, 0, 1, False), pool_output_size(5, 2, 2, 0, 1, True)
        (2, 3)
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _padding(size, out, kernel, stride, padding, dilation):
    """(left, right) padding that makes every window fit: the right side grows when
    ceil_mode makes the last window hang over the end, and shrinks when no window reaches it."""
    right = (out - 1) * stride + dilation * (kernel - 1) + 1 - size - padding
    return padding, max(right, 0)


def _first_valid(out, kernel, stride, padding, dilation):
    """For each window along one axis, the first kernel offset that lands inside the input
    (PyTorch's starting index of the max search)."""
    start = np.arange(out) * stride - padding
    first = np.where(start < 0, -(start // dilation), 0)  # ceil(-start / dilation)
    return np.minimum(first, kernel - 1)


class MaxPool2d(Function):
    """y[n, c, ho, wo] = max over the window (ho, wo) of x[n, c]; x:(N, C, H, W),
    y:(N, C, Ho, Wo). Padding counts as -inf (it never wins).

    dL/dx[n, c, h, w] = sum of dL/dy[n, c, ho, wo] over the windows whose argmax is (h, w):
    the max passes its gradient to the one input that won, every other input gets 0.
    Ties: the first maximum in row-major window order wins; a NaN always wins (the last
    NaN of the window), as in PyTorch. With return_indices a second, non-differentiable
    output gives the argmax as a flat index h*W + w into each (H, W) input plane (int64).
    NOTE: with dilation a window can hold padding only; it gives -inf and PyTorch's index,
    and passes no gradient (PyTorch writes that gradient out of bounds).

    Saves: the argmax as a kernel offset i*kw + j per output element (uint8 for windows of at
    most 256 cells: one byte per output element); not x, not y.
    Attrs: kernel_size (kh, kw), stride (sh, sw), padding (ph, pw), dilation (dh, dw),
    ceil_mode, return_indices.
    Reference: max_pool2d_reference_backward, the same rule without the speed paths.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation=(1, 1), ceil_mode=False,
                return_indices=False):
        out_size, pads = _out_size(x, ctx, kernel_size, stride, padding, dilation, ceil_mode)
        first = _initial_argmax(out_size, kernel_size, stride, padding, dilation)
        kernels = compiled_for("pool", x)     # retrograd/_numba/pool.py
        if kernels is not None:
            y, argmax = kernels.max_pool2d(x, out_size, first, kernel_size, stride, padding,
                                           dilation)
        else:
            y, argmax = _max_pool_passes(x, pads, out_size, first, kernel_size, stride,
                                         dilation)
        ctx.save_for_backward(argmax)
        ctx.out_size, ctx.pads, ctx.padding = out_size, pads, padding
        ctx.kernel_size, ctx.stride, ctx.dilation = kernel_size, stride, dilation
        if not return_indices:
            return y
        indices = _flat_indices(argmax, x.shape, kernel_size, stride, padding, dilation)
        ctx.mark_non_differentiable(indices)
        return y, indices

    @staticmethod
    def backward(ctx, grad_out, grad_indices=None):
        (argmax,) = ctx.saved_tensors
        kernels = compiled_for("pool", grad_out)
        if kernels is not None:
            return kernels.max_pool2d_backward(grad_out, argmax, ctx.x_shape,
                                               ctx.kernel_size, ctx.stride, ctx.padding,
                                               ctx.dilation)
        kh, kw = ctx.kernel_size
        grad_x_pad = np.zeros(ctx.x_pad_shape, dtype=grad_out.dtype)
        # grad * mask is the fast way to zero the losers, but inf * 0 is NaN: a gradient
        # holding inf or NaN takes the exact, slower np.where
        finite = bool(np.isfinite(grad_out).all())
        for i in range(kh):
            for j in range(kw):
                target = offset_view(grad_x_pad, i, j, ctx.out_size, ctx.stride, ctx.dilation)
                won = argmax == i * kw + j
                target += grad_out * won if finite else np.where(won, grad_out, 0)
        return _unpad(grad_x_pad, ctx.pads, ctx.x_shape)

    @staticmethod
    def cost(call):
        """Each window's cells inside x reduced to their max: cells - windows compares;
        backward one add per window (its gradient scattered to its argmax)."""
        cells, windows = _pool_cells(call, call_arg(call, 4, "dilation", (1, 1)))
        return Cost(cells - windows, windows * call.needs(0),
                    _pool_text("max_pool2d", call) + ": window cells in x - windows")


def _max_pool_passes(x, pads, out_size, first, kernel_size, stride, dilation):
    """(y, argmax) of MaxPool2d.forward by NumPy: one vectorized pass per kernel offset
    over a strided view of x padded with -inf."""
    kh, kw = kernel_size
    x_pad = _pad(x, pads, value=-np.inf)
    y = np.full(x.shape[:2] + out_size, -np.inf, dtype=x.dtype)
    argmax = np.broadcast_to(first, y.shape).copy()
    wins = np.empty(y.shape, dtype=bool)
    # a NaN always wins, as in PyTorch; testing for it costs two more passes per offset,
    # so only inputs that hold a NaN pay for it
    has_nan = bool(np.isnan(x).any())
    for i in range(kh):
        for j in range(kw):
            v = offset_view(x_pad, i, j, out_size, stride, dilation)
            np.greater(v, y, out=wins)
            if has_nan:
                wins |= np.isnan(v)
            np.maximum(y, v, out=y)  # NaN propagates: a window holding one gives NaN
            _assign_where(argmax, wins, i * kw + j)
    return y, argmax


def _axis_cells(size, out, kernel, stride, padding, dilation):
    """Along one axis: (the cells of all windows that lie inside the input, the windows
    with at least one such cell). Windows are separable, so a product over the axes counts
    the 2-D cells."""
    cells = np.arange(out)[:, None] * stride - padding + np.arange(kernel)[None, :] * dilation
    inside = (cells >= 0) & (cells < size)
    return int(inside.sum()), int(inside.any(axis=1).sum())


def _pool_cells(call, dilation):
    """(cells inside x over all windows, windows holding a cell of x) of a pooling call:
    padding cells (-inf for max, 0 for average) take part in no arithmetic."""
    x, y = call.inputs[0], call.outputs[0]
    kernel, stride, padding = (call_arg(call, i, name) for i, name in
                               enumerate(("kernel_size", "stride", "padding"), 1))
    (cells_h, windows_h), (cells_w, windows_w) = (
        _axis_cells(x.shape[2 + a], y.shape[2 + a], kernel[a], stride[a], padding[a],
                    dilation[a]) for a in range(2))
    planes = x.shape[0] * x.shape[1]
    return planes * cells_h * cells_w, planes * windows_h * windows_w


def _pool_text(name, call):
    return f"{name} x({shape_text(call.inputs[0])}) -> {shape_text(call.outputs[0])}"


def _assign_where(argmax, mask, k):
    """argmax[mask] = k, branch-free: argmax += mask * (k - argmax) in the unsigned dtype's
    wrap-around arithmetic. A masked write (np.copyto(..., where=mask)) branches per element,
    which is slow on a random mask like a max pool's (measured: docs/ops/conv.md, 'Recording
    the argmax')."""
    delta = np.subtract(k, argmax, dtype=argmax.dtype)
    delta *= mask
    argmax += delta


def _out_size(x, ctx, kernel_size, stride, padding, dilation, ceil_mode):
    """Output (Ho, Wo) and the ((top, bottom), (left, right)) padding of x; records the input
    and padded shapes on ctx."""
    out_size, pads = [], []
    for axis in range(2):
        size = x.shape[2 + axis]
        out = pool_output_size(size, kernel_size[axis], stride[axis], padding[axis],
                               dilation[axis], ceil_mode)
        out_size.append(out)
        pads.append(_padding(size, out, kernel_size[axis], stride[axis], padding[axis],
                             dilation[axis]))
    ctx.x_shape = x.shape
    ctx.x_pad_shape = x.shape[:2] + tuple(x.shape[2 + a] + sum(pads[a]) for a in range(2))
    return tuple(out_size), tuple(pads)


def _initial_argmax(out_size, kernel_size, stride, padding, dilation):
    """(Ho, Wo) kernel offsets of the first in-input cell of each window, in the smallest
    unsigned dtype that holds kh*kw offsets."""
    first = [_first_valid(out_size[a], kernel_size[a], stride[a], padding[a], dilation[a])
             for a in range(2)]
    dtype = np.min_scalar_type(kernel_size[0] * kernel_size[1] - 1)
    return (first[0][:, None] * kernel_size[1] + first[1][None, :]).astype(dtype)


def _flat_indices(argmax, x_shape, kernel_size, stride, padding, dilation):
    """PyTorch's return_indices: h * W + w of each window's argmax, int64."""
    ho, wo = argmax.shape[2:]
    i, j = np.divmod(argmax.astype(np.int64), kernel_size[1])
    h = np.arange(ho)[:, None] * stride[0] - padding[0] + i * dilation[0]
    w = np.arange(wo)[None, :] * stride[1] - padding[1] + j * dilation[1]
    return h * x_shape[3] + w


class AvgPool2d(Function):
    """y[n, c, ho, wo] = (sum of x[n, c] over the window (ho, wo)) / divisor[ho, wo];
    x:(N, C, H, W), y:(N, C, Ho, Wo). Padding counts as 0.

    divisor = divisor_override if given; else the number of window cells inside the padded
    input (count_include_pad=True) or inside the input itself (False). Cells of a ceil_mode
    window beyond the right padding never count, as in PyTorch.

    dL/dx[n, c, h, w] = sum over the windows (ho, wo) that contain (h, w) of
                        dL/dy[n, c, ho, wo] / divisor[ho, wo]
    (each input spreads its share evenly; padding cells' gradients are dropped).
    Saves: nothing but shapes and the (Ho, Wo) divisor.
    Attrs: kernel_size (kh, kw), stride (sh, sw), padding (ph, pw), ceil_mode,
    count_include_pad, divisor_override.
    Reference: avg_pool2d_reference_backward, the same rule without the speed paths.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
        out_size, pads = _out_size(x, ctx, kernel_size, stride, padding, (1, 1), ceil_mode)
        divisor = _avg_divisor(x.shape[2:], out_size, kernel_size, stride, padding,
                               count_include_pad, divisor_override)
        ctx.divisor = divisor.astype(x.dtype)
        ctx.out_size, ctx.pads, ctx.kernel_size, ctx.stride = out_size, pads, kernel_size, stride
        ctx.padding = padding
        kernels = compiled_for("pool", x)
        if kernels is not None:
            return kernels.avg_pool2d(x, out_size, ctx.divisor, kernel_size, stride, padding)
        x_pad = _pad(x, pads)
        # half precision sums are accumulated in float32, as PyTorch does
        acc_dtype = np.float32 if x.dtype.itemsize < 4 else x.dtype
        total = np.zeros(x.shape[:2] + out_size, dtype=acc_dtype)
        for i in range(kernel_size[0]):
            for j in range(kernel_size[1]):
                total += offset_view(x_pad, i, j, out_size, stride, (1, 1))
        return (total / divisor.astype(acc_dtype)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        kernels = compiled_for("pool", grad_out, ctx.divisor)
        if kernels is not None:
            return kernels.avg_pool2d_backward(grad_out, ctx.divisor, ctx.x_shape,
                                               ctx.kernel_size, ctx.stride, ctx.padding)
        share = grad_out / ctx.divisor
        grad_x_pad = np.zeros(ctx.x_pad_shape, dtype=grad_out.dtype)
        for i in range(ctx.kernel_size[0]):
            for j in range(ctx.kernel_size[1]):
                offset_view(grad_x_pad, i, j, ctx.out_size, ctx.stride, (1, 1))[...] += share
        return _unpad(grad_x_pad, ctx.pads, ctx.x_shape)

    @staticmethod
    def cost(call):
        """Each window's cells inside x summed (cells - windows adds), one divide per output;
        backward one divide per output and one add per window cell inside x (each share
        scattered to its cells)."""
        cells, windows = _pool_cells(call, (1, 1))
        size = call.outputs[0].size
        return Cost(cells - windows + size, (size + cells) * call.needs(0),
                    _pool_text("avg_pool2d", call) + ": window cells in x - windows + outputs")


def _avg_divisor(in_size, out_size, kernel_size, stride, padding, count_include_pad,
                 divisor_override):
    """(Ho, Wo) float64 divisors of average pooling: a product of one count per axis."""
    if divisor_override is not None:
        return np.full(out_size, float(divisor_override))
    counts = []
    for a in range(2):
        start = np.arange(out_size[a]) * stride[a] - padding[a]
        end = np.minimum(start + kernel_size[a], in_size[a] + padding[a])
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, in_size[a])
        counts.append((end - start).astype(np.float64))
    return counts[0][:, None] * counts[1][None, :]


def adaptive_windows(in_size, out_size):
    """Adaptive pooling windows along one axis, as PyTorch: window o covers
    [floor(o * in / out), ceil((o + 1) * in / out)). Returns (starts, ends).

    Example:
        >>> [a.tolist() for a in adaptive_windows(5, 3)]
        [[0, 1, 3], [2, 4, 5]]
    """
    o = np.arange(out_size)
    return (o * in_size) // out_size, -((-(o + 1) * in_size) // out_size)


def _window_matrix(in_size, out_size, dtype):
    """B:(out, in) with B[o, k] = 1 when input k lies in window o, and each window's size."""
    starts, ends = adaptive_windows(in_size, out_size)
    k = np.arange(in_size)
    inside = (k[None, :] >= starts[:, None]) & (k[None, :] < ends[:, None])
    return inside.astype(dtype), (ends - starts).astype(np.float64)


def _window_means(x, h, w, oh, ow, divisor):
    """y[..., a, b] = sum of x over window (a, b) / divisor[a, b], one window at a time (no
    product with the 0 entries of the window matrices)."""
    starts_h, ends_h = adaptive_windows(h, oh)
    starts_w, ends_w = adaptive_windows(w, ow)
    y = np.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
    for a in range(oh):
        band = x[:, :, starts_h[a]:ends_h[a]]
        for b in range(ow):
            y[:, :, a, b] = band[:, :, :, starts_w[b]:ends_w[b]].sum(axis=(2, 3))
    return y / divisor


class AdaptiveAvgPool2d(Function):
    """Average pooling to a fixed output size (oh, ow), whatever the input's (H, W).
    Window (a, b) covers rows [floor(a*H/oh), ceil((a+1)*H/oh)) and the columns alike.
    The op is linear and separable: with 0/1 window matrices B_h:(oh, H), B_w:(ow, W) and
    window sizes n_h:(oh,), n_w:(ow,),

        y = (B_h @ x @ B_w^T) / (n_h n_w^T)          x:(N, C, H, W) -> y:(N, C, oh, ow)
        dL/dx = B_h^T @ (dL/dy / (n_h n_w^T)) @ B_w                  (N, C, H, W)

    When that y is not finite (an inf or NaN in x, or sums beyond finfo.max), it is computed
    again window by window (sum of the window's cells / its size): in the products a 0 weight
    times an inf cell, or an overflowed partial sum, is 0 * inf = NaN, which would poison
    windows not containing the cell. A window holding inf or NaN is then inf or NaN, the
    others finite, as PyTorch. The check looks at y only: finite inputs pay nothing.
    The backward uses only matmul and division, so it also runs on Tensors: this op can be
    differentiated twice. Saves: B_h, B_w and the divisor (all small, sized by H, W, oh, ow).
    Attrs: output_size (oh, ow).

    Global average pooling (oh = ow = 1, ResNet's head) is a mean per plane: the forward
    sums each plane at once and a raw-array backward writes dL/dy / (H W) over it, where the
    window products made 2 * N*C tiny matrix products (ResNet-8's (32, 64, 8, 8): forward
    140 us and backward 250 us, against ~15 and ~25). A window of the whole plane holds
    every inf and NaN of it, so the result is the products' fallback's.
    """

    @staticmethod
    def forward(ctx, x, output_size):
        n, c, h, w = x.shape
        (oh, ow) = output_size
        # half precision sums are accumulated in float32, as PyTorch does
        acc_dtype = np.float32 if x.dtype.itemsize < 4 else x.dtype
        rows, n_h = _window_matrix(h, oh, acc_dtype)
        cols, n_w = _window_matrix(w, ow, acc_dtype)
        ctx.rows_t, ctx.cols = rows.T, cols
        ctx.divisor = (n_h[:, None] * n_w[None, :]).astype(acc_dtype)
        ctx.x_shape = x.shape
        if (oh, ow) == (1, 1):
            sums = x.reshape(n, c, h * w).sum(axis=2, dtype=acc_dtype)
            return (sums.reshape(n, c, 1, 1) / ctx.divisor).astype(x.dtype, copy=False)
        # x @ B_w^T as one GEMM over all (n, c, h) rows, then B_h @ per (n, c) plane
        summed_w = (x.reshape(-1, w).astype(acc_dtype, copy=False) @ cols.T) \
            .reshape(n, c, h, ow)
        y = (rows @ summed_w) / ctx.divisor
        if not np.isfinite(y).all():   # an inf in x, or sums beyond finfo.max: see below
            y = _window_means(x.astype(acc_dtype, copy=False), h, w, oh, ow, ctx.divisor)
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        scaled = grad_out / ctx.divisor
        if ctx.divisor.shape == (1, 1) and isinstance(scaled, np.ndarray):
            grad_x = np.empty(ctx.x_shape, dtype=scaled.dtype)
            grad_x[...] = scaled                   # one value per plane, broadcast
            return grad_x
        return ctx.rows_t @ scaled @ ctx.cols

    @staticmethod
    def cost(call):
        """As an average over windows (the 0/1 products are a way to compute it, not its
        arithmetic): each window's cells summed, one divide per output; backward one divide
        per output and one add per window cell."""
        x, y = call.inputs[0], call.outputs[0]
        starts_h, ends_h = adaptive_windows(x.shape[2], y.shape[2])
        starts_w, ends_w = adaptive_windows(x.shape[3], y.shape[3])
        cells = x.shape[0] * x.shape[1] * int((ends_h - starts_h).sum() * (ends_w - starts_w).sum())
        return Cost(cells, (y.size + cells) * call.needs(0),
                    _pool_text("adaptive_avg_pool2d", call) + ": window cells")


def _adaptive_cells(size, out):
    """Along one axis: (out, k) indices of each adaptive window's cells, k the largest
    window; a shorter window repeats its last cell (a repeat never changes the window's
    max, nor which pixel holds it)."""
    starts, ends = adaptive_windows(size, out)
    cells = starts[:, None] + np.arange(int((ends - starts).max(initial=1)))[None, :]
    return np.minimum(cells, ends[:, None] - 1)


class AdaptiveMaxPool2d(Function):
    """Max pooling to a fixed output size (oh, ow): y[n, c, a, b] = max of x[n, c] over
    window (a, b), which covers rows [floor(a*H/oh), ceil((a+1)*H/oh)) and the columns alike
    (adaptive_windows; neighbouring windows overlap when H is not a multiple of oh).
    x:(N, C, H, W), y:(N, C, oh, ow). Ties: the first maximum in row-major window order
    wins; a NaN always wins (the last NaN of the window), as in PyTorch. The second output,
    non-differentiable, is the argmax as a flat index h*W + w into each (H, W) plane (int64).

    dL/dx[n, c, h, w] = sum of dL/dy[n, c, a, b] over the windows whose argmax is (h, w)
    (a pixel can win several overlapping windows; every other pixel gets 0).
    Saves: the argmax, (N, C, oh, ow) int64; not x, not y.
    Attrs: output_size (oh, ow).
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, output_size):
        n, c, h, w = x.shape
        rows, cols = _adaptive_cells(h, output_size[0]), _adaptive_cells(w, output_size[1])
        # (N, C, oh, ow, kh, kw): every window's cells, gathered in one indexed copy
        cells = x[:, :, rows[:, None, :, None], cols[None, :, None, :]]
        cells = cells.reshape(n, c, *output_size, rows.shape[1] * cols.shape[1])
        winner = _reference_argmax(cells)
        y = np.take_along_axis(cells, winner[..., None], axis=-1)[..., 0]
        kw = cols.shape[1]
        a, b = np.ogrid[:output_size[0], :output_size[1]]
        indices = rows[a, winner // kw] * w + cols[b, winner % kw]
        ctx.save_for_backward(indices)
        ctx.x_shape = x.shape
        ctx.mark_non_differentiable(indices)
        return y, indices

    @staticmethod
    def backward(ctx, grad_out, grad_indices=None):
        (indices,) = ctx.saved_tensors
        n, c, h, w = ctx.x_shape
        grad_x = np.zeros((n * c, h * w), dtype=grad_out.dtype)
        # np.add.at adds every window's gradient, also where one pixel won several windows
        np.add.at(grad_x, (np.arange(n * c)[:, None], indices.reshape(n * c, -1)),
                  grad_out.reshape(n * c, -1))
        return grad_x.reshape(ctx.x_shape)

    @staticmethod
    def cost(call):
        """Each window's cells reduced to their max: cells - windows compares; backward one
        add per window (its gradient scattered to its argmax)."""
        x, y = call.inputs[0], call.outputs[0]
        starts_h, ends_h = adaptive_windows(x.shape[2], y.shape[2])
        starts_w, ends_w = adaptive_windows(x.shape[3], y.shape[3])
        cells = x.shape[0] * x.shape[1] * int((ends_h - starts_h).sum() * (ends_w - starts_w).sum())
        return Cost(cells - y.size, y.size * call.needs(0),
                    _pool_text("adaptive_max_pool2d", call) + ": window cells - windows")


# ---------------------------------------------------------------- the reference backwards
def max_pool2d_reference_backward(x, grad_out, kernel_size, stride, padding, dilation=(1, 1),
                                  ceil_mode=False):
    """The backward of MaxPool2d window by window, as its docstring states it:

        dL/dx[n, c, h, w] = sum of dL/dy[n, c, ho, wo] over the windows whose argmax is (h, w)

    Each window's argmax is taken over its cells inside x (padding never wins), in row-major
    window order: the first maximum wins a tie and the last NaN wins over every number. A
    window with no cell inside x passes no gradient. x:(N, C, H, W), grad_out = dL/dy:(N, C,
    Ho, Wo); the attributes are MaxPool2d.forward's. Returns dL/dx:(N, C, H, W), in x's dtype.

    Example:
        >>> x = np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 6.0]]]])
        >>> max_pool2d_reference_backward(x, np.array([[[[10.0, 20.0]]]]), (2, 2), (2, 2),
        ...                               (0, 0)).tolist()
        [[[[0.0, 10.0, 0.0, 0.0], [0.0, 0.0, 20.0, 0.0]]]]
    """
    n, c, h, w = x.shape
    samples, channels = np.arange(n)[:, None], np.arange(c)[None, :]
    grad_x = np.zeros_like(x)
    for ho, wo, rows, cols in _reference_windows(x.shape, kernel_size, stride, padding,
                                                 dilation, ceil_mode):
        rows, cols = _inside(rows, 0, h), _inside(cols, 0, w)
        if rows.size == 0 or cols.size == 0:
            continue
        cells = x[:, :, rows[:, None], cols[None, :]].reshape(n, c, -1)   # row-major order
        winner = _reference_argmax(cells)                                   # (N, C)
        np.add.at(grad_x, (samples, channels, rows[winner // cols.size],
                           cols[winner % cols.size]), grad_out[:, :, ho, wo])
    return grad_x


def avg_pool2d_reference_backward(x, grad_out, kernel_size, stride, padding, ceil_mode=False,
                                  count_include_pad=True, divisor_override=None):
    """The backward of AvgPool2d window by window, as its docstring states it:

        dL/dx[n, c, h, w] = sum over the windows (ho, wo) that contain (h, w) of
                            dL/dy[n, c, ho, wo] / divisor[ho, wo]

    divisor = divisor_override if given, else the number of the window's cells inside the
    padded input (count_include_pad=True) or inside x (False). x:(N, C, H, W), grad_out =
    dL/dy:(N, C, Ho, Wo); the attributes are AvgPool2d.forward's. Returns dL/dx:(N, C, H, W),
    in x's dtype.

    Example:
        >>> x = np.array([[[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]]])
        >>> avg_pool2d_reference_backward(x, np.array([[[[4.0, -8.0]]]]), (2, 2), (2, 2),
        ...                               (0, 0)).tolist()
        [[[[1.0, 1.0, -2.0, -2.0], [1.0, 1.0, -2.0, -2.0]]]]
    """
    (h, w), (ph, pw) = x.shape[2:], padding
    grad_x = np.zeros_like(x)
    for ho, wo, rows, cols in _reference_windows(x.shape, kernel_size, stride, padding,
                                                 (1, 1), ceil_mode):
        rows_in, cols_in = _inside(rows, 0, h), _inside(cols, 0, w)
        if divisor_override is not None:
            divisor = divisor_override
        elif count_include_pad:
            divisor = _inside(rows, -ph, h + ph).size * _inside(cols, -pw, w + pw).size
        else:
            divisor = rows_in.size * cols_in.size
        # the cells of one window are distinct pixels, so += adds each share once
        grad_x[:, :, rows_in[:, None], cols_in[None, :]] += grad_out[:, :, ho, wo, None, None] \
            / divisor
    return grad_x


def _reference_windows(x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """(ho, wo, rows, cols) for every window: the row and column indices it covers, from
    ho*sh - ph + i*dh (i = 0..kh-1), padding cells included (negative or >= the size)."""
    cells = []
    for a in range(2):
        out = pool_output_size(x_shape[2 + a], kernel_size[a], stride[a], padding[a],
                               dilation[a], ceil_mode)
        offsets = dilation[a] * np.arange(kernel_size[a])
        cells.append([o * stride[a] - padding[a] + offsets for o in range(out)])
    for ho, rows in enumerate(cells[0]):
        for wo, cols in enumerate(cells[1]):
            yield ho, wo, rows, cols


def _inside(indices, low, high):
    """The indices in [low, high)."""
    return indices[(indices >= low) & (indices < high)]


def _reference_argmax(cells):
    """The winning cell along the last axis: the last NaN if there is one, else the first
    maximum (np.argmax's own tie rule)."""
    is_nan = np.isnan(cells)
    last_nan = cells.shape[-1] - 1 - np.argmax(is_nan[..., ::-1], axis=-1)
    return np.where(is_nan.any(axis=-1), last_nan, np.argmax(cells, axis=-1))
