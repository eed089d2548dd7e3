"""Convolution (cross-correlation, as in PyTorch) by im2col and one GEMM: Conv2d and Conv1d.

Notation: input x:(N, C, H, W), weight W:(O, C/g, kh, kw), bias b:(O,), g groups, stride
(sh, sw), dilation (dh, dw), padding (top, bottom), (left, right), output y:(N, O, Ho, Wo) with

    Ho = floor((H + top + bottom - dh * (kh - 1) - 1) / sh) + 1      (and Wo alike).

im2col copies every receptive field of the zero-padded input x_pad into a column:

    X_col[(c, i, j), (n, ho, wo)] = x_pad[n, c, ho * sh + i * dh, wo * sw + j * dw]

so that the whole convolution, all samples at once, is one matrix product
Y = W_2d @ X_col + b, W_2d:(O, C*kh*kw), X_col:(C*kh*kw, N*Ho*Wo), Y:(O, N*Ho*Wo). The copy
is made from a strided *view* of x_pad (``np.lib.stride_tricks.as_strided``): no Python loop
touches a pixel. One large GEMM (one per group, as one batched matmul) rather than one per
sample: a BLAS call synchronizes its threads, and on a busy machine N small calls cost far more
than one large one.

Stride-1 convolutions with enough input channels use a leaner *row layout* instead (see
_im2row): X_row holds only the kh row shifts of x_pad, each row of X_row a run of consecutive
pixels of x_pad, and the kw column shifts become column offsets into X_row, so that

    Y_wide = sum_j W_j @ X_row[:, j*dw : j*dw + N*Ho*Wp]        W_j = W[:, :, :, j]:(O, C*kh)

over every pixel of each padded row (Wp per output row instead of Wo; the Wp - Wo extra
columns are computed and thrown away; _rows_width says where this pays). X_row is kw times
smaller than X_col (a third for 3x3 kernels), is saved for backward in its place, and makes
the forward faster (measured: docs/ops/conv.md, 'The row layout').

With Numba installed (the 'fast' extra), dense 3x3 and 5x5 stride-1 convolutions with at
most 4 input channels (a network's first layer, as a rule), or 16 where the kernels run on
all threads, are computed directly instead, by the compiled loops of
retrograd/_numba/dense_conv.py, which save the padded input for dL/dW (_dense_kernels says
when).

With oneDNN installed (the 'fast' extra, on x86-64 Linux), float32 convolutions go to its
primitives instead (retrograd/_onednn/conv.py, as PyTorch's CPU convolutions do): forward,
dL/dx and dL/dW with dL/db, each in the channel-blocked layout oneDNN chooses, with the
reorders from and to NCHW; x itself is saved for dL/dW (_onednn_plan says when). The paths
below then run for float64 (gradcheck), for other dtypes and where oneDNN is absent.

Conv1d is Conv2d with H = kh = 1 (a view, no copy). Both are fused kernels with a raw-array
backward (``once_differentiable``): a second derivative through them raises an error.

The backward has speed paths (the row layout, dL/dx as a convolution, col2im by kernel
offsets). ``conv2d_reference_backward`` at the end of this file is the same rule without
them, written straight from the Conv2d docstring; the tests check every path against it.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from retrograd._fast import FLOATS, compiled, onednn
from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text
from retrograd.autograd.function import Function
from retrograd.ops._matmul import matmul
from retrograd.ops._parallel import copy_contiguous, copy_into

__all__ = ["Conv2d", "Conv1d", "conv2d_reference_backward", "conv_output_size",
           "offset_view"]


def conv_output_size(size, kernel, stride, pad_total, dilation):
    """Output length along one axis: floor((size + pad_total - dilation*(kernel-1) - 1) / stride)
    + 1 (a value <= 0 means the dilated kernel does not fit in the padded input).

    Example:
        >>> conv_output_size(32, 3, 1, 2, 1), conv_output_size(7, 3, 2, 0, 1)
        (32, 3)
    """
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def offset_view(x_pad, i, j, out_size, stride, dilation):
    """The pixels of x_pad:(A, B, Hp, Wp) (NCHW, or CNHW in col2im) that kernel offset (i, j)
    sees in every window: a strided view (A, B, Ho, Wo), x_pad[:, :, i*dh + sh*ho,
    j*dw + sw*wo]. Writing into it writes into x_pad (col2im and the pooling backward add
    into it).

    Example:
        >>> x = np.arange(16).reshape(1, 1, 4, 4)
        >>> offset_view(x, 1, 0, (2, 2), (2, 2), (1, 1))[0, 0].tolist()
        [[4, 6], [12, 14]]
    """
    (ho, wo), (sh, sw), (dh, dw) = out_size, stride, dilation
    return x_pad[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh,
                 j * dw: j * dw + sw * (wo - 1) + 1: sw]


def _pad(x, padding, value=0.0):
    """x:(N, C, H, W) with ((top, bottom), (left, right)) rows/columns of ``value`` added; x
    itself (no copy) when there is no padding."""
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    x_pad = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    x_pad[:, :, top:top + h, left:left + w] = x
    return x_pad


def _unpad(x_pad, padding, shape):
    """The inverse of _pad for a gradient (used by pooling): the (H, W) interior, as a
    contiguous array."""
    (top, _), (left, _) = padding
    if x_pad.shape == shape:
        return x_pad
    return np.ascontiguousarray(x_pad[:, :, top:top + shape[2], left:left + shape[3]])


def _im2col(x_pad, kernel, out_size, stride, dilation):
    """X_col:(C*kh*kw, N*Ho*Wo) from x_pad:(N, C, Hp, Wp): rows ordered (c, i, j) like
    W.reshape(O, -1), columns (n, ho, wo). One copy out of a 6-D strided view
    (C, kh, kw, N, Ho, Wo) of x_pad; the innermost axis (wo) reads x_pad with stride sw."""
    n, c = x_pad.shape[:2]
    (kh, kw), (ho, wo), (sh, sw), (dh, dw) = kernel, out_size, stride, dilation
    s_n, s_c, s_h, s_w = x_pad.strides
    windows = as_strided(x_pad, shape=(c, kh, kw, n, ho, wo),
                         strides=(s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw),
                         writeable=False)
    return copy_contiguous(windows).reshape(c * kh * kw, n * ho * wo)


def _rows_width(x_pad, weight_shape, out_size, stride):
    """Wp when the row layout applies, else None (X_col is used). It needs stride 1 and a
    kernel of more than one row and column, and pays only with at least 8 rows per group in
    X_row, so that each GEMM has some depth, and at most a third more columns than outputs
    (8x8 maps with 'same' 3x3 kernels: 10 for 8). Conv1d (one kernel row) stays with X_col,
    whose copies are already long runs (measured: docs/ops/conv.md, 'The row layout')."""
    _, cg, kh, kw = weight_shape
    wo, wp = out_size[1], x_pad.shape[3]
    if stride != (1, 1) or kh == 1 or kw == 1 or cg * kh < 8 or 3 * wp > 4 * wo \
            or not x_pad.size:      # an empty batch: X_row would have no row to shift
        return None
    return wp


def _im2row(x_pad, kernel_h, dilation_h, out_h, extra):
    """X_row:(C*kh, N*Ho*Wp + extra) from x_pad:(N, C, Hp, Wp), rows ordered (c, i), columns
    (n, ho, w):

        X_row[(c, i), (n, ho, w)] = x_pad[n, c, ho + i*dh, w]        for w < Wp,

    so that each (c, i, n) is one run of Ho*Wp consecutive values of x_pad, copied from a
    strided view. The ``extra`` last columns are zeros: the column offsets j*dw of the kernel
    read up to (kw-1)*dw past the last run."""
    x_pad = np.ascontiguousarray(x_pad)  # runs need consecutive rows
    n, c, _, wp = x_pad.shape
    length = n * out_h * wp
    rows = np.empty((c * kernel_h, length + extra), dtype=x_pad.dtype)
    rows[:, length:] = 0
    s_n, s_c, s_h, s_w = x_pad.strides
    runs = as_strided(x_pad, shape=(c, kernel_h, n, out_h * wp),
                      strides=(s_c, s_h * dilation_h, s_n, s_w), writeable=False)
    copy_into(rows[:, :length].reshape(c, kernel_h, n, out_h * wp), runs)
    return rows


def _shifted(rows, offset, length, groups):
    """X_row's columns [offset, offset + length) as (g, C/g*kh, length): a view (its rows
    keep X_row's stride, which BLAS takes as the leading dimension)."""
    return rows[:, offset:offset + length].reshape(groups, -1, length)


def _row_gemm(weight, rows, groups, length, dilation_w):
    """Y_wide:(g, O/g, length) = sum_j W_j @ X_row shifted by j*dw, one GEMM per kernel
    column j (per group)."""
    o, cg, kh, kw = weight.shape
    # (kw, g, O/g, C/g*kh): column j of the kernel as one matrix per group
    w_cols = np.ascontiguousarray(weight.reshape(groups, o // groups, cg, kh, kw)
                                  .transpose(4, 0, 1, 2, 3)).reshape(kw, groups, o // groups, -1)
    y = matmul(w_cols[0], _shifted(rows, 0, length, groups))
    term = np.empty_like(y)
    for j in range(1, kw):
        y += matmul(w_cols[j], _shifted(rows, j * dilation_w, length, groups), out=term)
    return y


def _grad_weight_rows(grad_out, rows, ctx):
    """dL/dW from X_row: dL/dW_j = dL/dY_wide @ (X_row shifted by j*dw)^T per kernel column j,
    with dL/dY_wide:(O, N*Ho*Wp) zero on the thrown-away columns."""
    n, o, ho, wo = grad_out.shape
    _, cg, kh, kw = ctx.w_shape
    g, wp, length = ctx.groups, ctx.width, n * ho * ctx.width
    grad_wide = np.zeros((o, n, ho, wp), dtype=grad_out.dtype)
    grad_wide[..., :wo] = np.swapaxes(grad_out, 0, 1)
    grad_wide_t = np.swapaxes(grad_wide.reshape(g, o // g, length), -1, -2)
    # dL/dW_j^T = shift_j(X_row) @ dL/dY_wide^T: the same product with the long axis inside
    # the first operand's rows, which BLAS runs 1.5-2x faster on these shapes (small O and
    # C*kh, long N*Ho*Wp; measured: docs/ops/conv.md, 'dL/dW transposed')
    grad_w_t = np.empty((kw, g, cg * kh, o // g), dtype=grad_out.dtype)
    for j in range(kw):
        matmul(_shifted(rows, j * ctx.dilation[1], length, g), grad_wide_t,
               out=grad_w_t[j])
    # (kw, g, C/g, kh, O/g) -> (O, C/g, kh, kw)
    return (grad_w_t.reshape(kw, g, cg, kh, o // g).transpose(1, 4, 2, 3, 0)
            .reshape(o, cg, kh, kw).copy())


def _col2im_gemm(weight, grad_y, ctx):
    """dL/dx:(N, C, H, W) from dL/dY:(g, O/g, N*Ho*Wo): col2im(W_2d^T @ dL/dY). For strided
    convolutions with the compiled kernels (retrograd/_numba/conv.py) the product is one GEMM
    per group and col2im one pass that adds every entry of dL/dX_col into its pixel; else
    _col2im_by_offsets."""
    kernels = compiled("conv")
    if kernels is None or grad_y.dtype not in FLOATS or ctx.stride == (1, 1):
        # at stride 1 dL/dX_col is 9x the input: more memory (the small CNN of
        # benchmarks/vs_torch.py peaked 8 MiB higher) for no gain in time
        return _col2im_by_offsets(weight, grad_y, ctx.x_shape, ctx.padding, ctx.out_size,
                                  ctx.stride, ctx.dilation)
    g, og, length = grad_y.shape
    _, cg, kh, kw = weight.shape
    # (g, K/g, O/g) @ (g, O/g, N*L): dL/dX_col, rows (c, i, j) of each group
    w_t = np.swapaxes(weight.reshape(g, og, cg * kh * kw), -1, -2)
    grad_cols = matmul(w_t, grad_y).reshape(g * cg * kh * kw, length)
    (top, _), (left, _) = ctx.padding
    return kernels.col2im(grad_cols, ctx.x_shape, (kh, kw), ctx.out_size, ctx.stride,
                          (top, left), ctx.dilation)


# dL/dX_col values per GEMM of _col2im_wide_gemm (~2 MB in float32): samples go in chunks,
# dL/dY in the wide layout too. The small CNN of benchmarks/vs_torch.py peaked at 35.7 MiB
# with 4 MB chunks and dL/dY widened whole, 30.5 MiB so (32.0 with the NumPy path's blocks)
_WIDE_CHUNK_VALUES = 1 << 19


def _wide_col2im_kernels(ctx, grad_out, weight):
    """The compiled kernels for _col2im_wide_gemm (a stride-1 conv with one group, float32 or
    float64, a non-empty batch), else None."""
    if ctx.stride != (1, 1) or ctx.groups != 1 or not grad_out.size:
        return None
    return _float_kernels(grad_out, weight)


def _float_kernels(array, weight):
    """compiled("conv") for an array and a weight of one float dtype (float32 or float64;
    the kernels copy or pad what is not contiguous), else None: the dtype test of every
    compiled convolution path."""
    if array.dtype not in FLOATS or weight.dtype != array.dtype:
        return None
    return compiled("conv")


def _col2im_wide_gemm(kernels, weight, grad_out, ctx):
    """dL/dx of a stride-1 convolution with one group where it is not itself a convolution
    (_transposed_padding is None), in the wide layout: per chunk of samples one GEMM,
    dL/dX_col = W_2d^T @ dL/dY_wide (every padded column w < Wp, zero on the thrown-away
    ones), added back run by run by kernels.col2im_wide; then the padding is cut away.
    (_col2im_by_offsets, the NumPy path, makes kh*kw GEMMs and strided adds instead: the
    whole backward of LeNet's 20 -> 50 5x5 layer, batch 64, took 9.1-9.4 ms with it and
    5.4-5.7 ms with this.)"""
    n, o, ho, _ = grad_out.shape
    _, c, kh, kw = weight.shape
    (top, bottom), (left, right) = ctx.padding
    h, w = ctx.x_shape[2:]
    hp, wp = h + top + bottom, w + left + right
    length = ho * wp
    w_t = np.ascontiguousarray(weight.reshape(o, -1).T)          # (C*kh*kw, O)
    grad_pad = np.zeros((n, c, hp * wp), dtype=grad_out.dtype)
    chunk = max(1, _WIDE_CHUNK_VALUES // (w_t.shape[0] * length))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        wide = kernels.wide_planes(grad_out[start:stop], wp)    # (chunk, O, Ho*Wp)
        grad_on = np.ascontiguousarray(wide.transpose(1, 0, 2)).reshape(o, -1)
        cols = matmul(w_t, grad_on).reshape(-1, stop - start, length)
        kernels.col2im_wide(cols, grad_pad[start:stop], (kh, kw), wp, ctx.dilation)
    interior = grad_pad.reshape(n, c, hp, wp)[:, :, top:top + h, left:left + w]
    return np.ascontiguousarray(interior)


def _col2im_by_offsets(weight, grad_y, x_shape, padding, out_size, stride, dilation):
    """dL/dx:(N, C, H, W) from dL/dY:(g, O/g, N*Ho*Wo), kernel offset by kernel offset:

        dL/dx_pad[n, :, i*dh + sh*ho, j*dw + sw*wo] += (W[:, :, i, j]^T @ dL/dY)[:, (n, ho, wo)]

    then the padding is cut away. This is col2im(W_2d^T @ dL/dY) with the GEMM split by rows
    (c, i, j): the (i, j) block of dL/dX_col is computed into one reused (C, N*Ho*Wo) buffer
    and added straight into its strided view of dL/dx_pad, so dL/dX_col (kh*kw times the
    input's size) is never materialized. dL/dx_pad is accumulated as (C, N, Hp, Wp), the
    blocks' own axis order, where the adds are faster than into NCHW (measured:
    docs/ops/conv.md, 'col2im by kernel offsets'), and reordered by the copy that cuts the
    padding. weight:(O, C/g, kh, kw)."""
    g, og, length = grad_y.shape
    _, cg, kh, kw = weight.shape
    n, c, h, w = x_shape
    (top, bottom), (left, right) = padding
    # (kh, kw, g, C/g, O/g): every W[:, :, i, j]^T is a contiguous (g, C/g, O/g) block
    w_t = np.ascontiguousarray(weight.reshape(g, og, cg, kh, kw).transpose(3, 4, 0, 2, 1))
    block = np.empty((g, cg, length), dtype=grad_y.dtype)
    block_cn = block.reshape(c, n, *out_size)
    grad_pad_cn = np.zeros((c, n, h + top + bottom, w + left + right), dtype=grad_y.dtype)
    # with one filter per group (depthwise) the product is an outer product: a broadcast
    # multiply is one pass, where matmul would make g tiny BLAS calls
    product = np.multiply if og == 1 else matmul
    for i in range(kh):
        for j in range(kw):
            product(w_t[i, j], grad_y, out=block)
            offset_view(grad_pad_cn, i, j, out_size, stride, dilation)[...] += block_cn
    interior = grad_pad_cn[:, :, top:top + h, left:left + w]
    return np.ascontiguousarray(interior.transpose(1, 0, 2, 3))


def _conv2d_forward(ctx, x, weight, bias, stride, padding, dilation, groups):
    """The forward of Conv2d on 4-D arrays (shared with Conv1d): returns (y, X_col) and
    keeps the shapes and attributes that backward needs on ctx."""
    n, _, h, w = x.shape
    o, cg, kh, kw = weight.shape
    (top, bottom), (left, right) = padding
    out_size = (conv_output_size(h, kh, stride[0], top + bottom, dilation[0]),
                conv_output_size(w, kw, stride[1], left + right, dilation[1]))
    ctx.x_shape, ctx.w_shape, ctx.out_size, ctx.width = x.shape, weight.shape, out_size, None
    ctx.stride, ctx.padding, ctx.dilation, ctx.groups = stride, padding, dilation, groups
    ctx.onednn = _onednn_plan((x, weight) if bias is None else (x, weight, bias), x.shape,
                              weight.shape, out_size, bias is not None, stride, padding,
                              dilation, groups)
    if ctx.onednn is not None:
        x = np.ascontiguousarray(x)
        y = ctx.onednn.forward(x, np.ascontiguousarray(weight),
                               None if bias is None else np.ascontiguousarray(bias))
        return y, x
    ctx.direct = _direct_kernels(x, weight, groups, stride)
    if ctx.direct is not None:
        y = ctx.direct.depthwise_conv2d(x, weight, bias, out_size, padding, dilation)
        return y, x
    ctx.dense = _dense_kernels(x, weight, groups, stride, dilation, out_size, padding)
    if ctx.dense is not None:
        return ctx.dense.dense_conv2d(x, weight, bias, padding)     # (y, x_pad: for dL/dW)
    x_pad = _pad(x, padding)
    width = _rows_width(x_pad, weight.shape, out_size, stride)
    if width is None:
        cols = _im2col(x_pad, (kh, kw), out_size, stride, dilation)
        k_g, columns = cg * kh * kw, n * out_size[0] * out_size[1]
        # (g, O/g, K/g) @ (g, K/g, N*L): one GEMM per group, Y:(O, N*L)
        y_onl = matmul(weight.reshape(groups, o // groups, k_g),
                       cols.reshape(groups, k_g, columns))
        y_onhw = y_onl.reshape(o, n, *out_size)
    else:
        length = n * out_size[0] * width
        cols = _im2row(x_pad, kh, dilation[0], out_size[0], (kw - 1) * dilation[1])
        y_wide = _row_gemm(weight, cols, groups, length, dilation[1])
        y_onhw = y_wide.reshape(o, n, out_size[0], width)[..., :out_size[1]]
    # (O, N, Ho, Wo) -> NCHW: the copy that reorders the axes also adds the bias
    y_nchw = y_onhw.transpose(1, 0, 2, 3)
    y = np.empty((n, o) + out_size, dtype=x.dtype)
    if bias is not None:
        np.add(y_nchw, bias.reshape(o, 1, 1), out=y)
    else:
        np.copyto(y, y_nchw)
    ctx.width = width
    return y, cols


def _onednn_plan(arrays, x_shape, w_shape, out_size, has_bias, stride, padding, dilation,
                 groups):
    """oneDNN's primitives for a float32 convolution of this geometry (its input x_shape, its
    weight w_shape; retrograd/_onednn/conv.py), or None: one of ``arrays`` (the operands)
    not float32 or empty, oneDNN not installed or not implementing it. Also the transposed
    convolutions' (ops/conv_transpose.py)."""
    if any(array.dtype != np.float32 or not array.size for array in arrays):
        return None
    kernels = onednn("conv")
    if kernels is None:
        return None
    return kernels.plan_for(x_shape, w_shape, out_size, has_bias, stride, padding, dilation,
                            groups)


def _direct_kernels(x, weight, groups, stride):
    """The compiled depthwise kernels (retrograd/_numba/conv.py) for a stride-1 depthwise
    conv (each filter sees one channel: groups = C, weight (C*m, 1, kh, kw)) of float32 or
    float64 arrays, else None (im2col + GEMM)."""
    if groups == 1 or groups != x.shape[1] or weight.shape[1] != 1 or stride != (1, 1):
        return None
    return _float_kernels(x, weight)


# A dense 3x3 or 5x5 conv computed directly (retrograd/_numba/dense_conv.py) beat im2row or
# im2col + GEMM with up to 4 input channels on planes of 196 positions or more (measured:
# docs/performance.md, 'Direct convolutions for few channels')
_DENSE_MAX_INPUTS, _DENSE_MIN_PLANE, _DENSE_KERNELS = 4, 196, ((3, 3), (5, 5))
# with the kernels on all threads (retrograd/_numba/policy.py) the direct loops also beat the
# row layout + GEMM for up to 16 input channels: ResNet-8's 16 -> 16 layer on 32x32 planes,
# batch 32, forward + backward 7.35 -> 5.06 ms; with 32 channels (on 16x16) they lose,
# 5.04 -> 6.02 ms (measured on the machine of docs/performance.md)
_DENSE_MAX_INPUTS_PARALLEL = 16


def _dense_kernels(x, weight, groups, stride, dilation, out_size, padding):
    """The compiled kernels (retrograd/_numba/conv.py, from dense_conv.py) for a dense 3x3
    or 5x5 convolution (one group, stride 1, no dilation) of float32 or float64 arrays with
    few input channels (4, or 16 where the kernels run on all threads) on planes large
    enough, else None (the row layout or im2col + GEMM)."""
    _, c, kh, kw = weight.shape
    if (kh, kw) not in _DENSE_KERNELS or groups != 1 or stride != (1, 1) \
            or dilation != (1, 1):
        return None
    if not x.size:
        return None
    (left, right) = padding[1]
    if out_size[0] * (x.shape[3] + left + right) < _DENSE_MIN_PLANE:
        return None
    kernels = _float_kernels(x, weight)
    if kernels is None:
        return None
    most = _DENSE_MAX_INPUTS_PARALLEL if kernels.parallel(x.size) else _DENSE_MAX_INPUTS
    return kernels if c <= most else None


def _cols_to_save(ctx, cols, x):
    """X_col when dL/dW is needed, else None. For one sample and a 1x1 kernel with stride 1
    and no padding X_col is a view of x: then x itself is saved, so that an in-place change
    of x before backward is caught by the version check instead of silently changing dL/dW."""
    if not ctx.needs_input_grad[1]:
        return None
    # only when X_col is x itself, reshaped: a strided 1x1 conv's X_col is also a view of x,
    # of fewer elements, and must be saved as it is
    return x if cols.size == x.size and np.may_share_memory(cols, x) else cols


def _conv2d_backward(ctx, grad_out, cols, weight):
    """The backward of Conv2d on 4-D arrays (shared with Conv1d); cols is X_col or X_row (or
    x, see _cols_to_save; or x_pad, from the direct kernels) or None, weight is W or None."""
    n, o = grad_out.shape[:2]
    g, length = ctx.groups, ctx.out_size[0] * ctx.out_size[1]
    if ctx.onednn is not None:
        return _onednn_backward(ctx, grad_out, cols, weight)
    if ctx.direct is not None:
        return _direct_backward(ctx, grad_out, cols, weight)
    grad_w = None
    if ctx.dense is not None and cols is not None:     # cols is x_pad
        grad_w = ctx.dense.dense_conv2d_grad_weight(grad_out, cols, ctx.w_shape)
        cols = None
    by_col2im = weight is not None and _transposed_padding(ctx) is None
    wide = _wide_col2im_kernels(ctx, grad_out, weight) if by_col2im else None
    grad_y = None
    if (ctx.width is None and cols is not None) or (by_col2im and wide is None):
        # dL/dY in the GEMM's layout (O, N*L), grouped: (g, O/g, N*L); one transposing copy
        grad_y = copy_contiguous(np.swapaxes(grad_out.reshape(n, o, length), 0, 1))
        grad_y = grad_y.reshape(g, o // g, n * length)
    grad_x = grad_b = None
    if ctx.needs_input_grad[2]:
        grad_b = grad_out.reshape(n, o, length).sum(axis=(0, 2))
    if cols is not None and ctx.width is not None:
        grad_w = _grad_weight_rows(grad_out, cols, ctx)
    elif cols is not None:
        _, cg, kh, kw = ctx.w_shape
        cols = cols.reshape(g, cg * kh * kw, n * length)
        # (g, K/g, N*L) @ (g, N*L, O/g) -> (g, K/g, O/g), dL/dW_2d transposed (the faster
        # orientation, see _grad_weight_rows): the sum over samples is in the GEMM
        grad_w_t = matmul(cols, np.swapaxes(grad_y, -1, -2))
        grad_w = np.swapaxes(grad_w_t, -1, -2).reshape(ctx.w_shape)
    if wide is not None:
        grad_x = _col2im_wide_gemm(wide, weight, grad_out, ctx)
    elif by_col2im:
        grad_x = _col2im_gemm(weight, grad_y, ctx)
    elif weight is not None:
        grad_x = _grad_input_by_conv(weight, grad_out, ctx)
    return grad_x, grad_w, grad_b


def _onednn_backward(ctx, grad_out, x, weight):
    """The backward by oneDNN's primitives: dL/dx when W was saved, dL/dW (and dL/db with
    it) when x was."""
    grad_out = np.ascontiguousarray(grad_out, dtype=np.float32)
    grad_x, grad_w, grad_b = ctx.onednn.backward(
        grad_out, None if x is None else x.reshape(ctx.x_shape),
        None if weight is None else np.ascontiguousarray(weight))
    if ctx.needs_input_grad[2] and grad_b is None:
        n, o = grad_out.shape[:2]
        grad_b = grad_out.reshape(n, o, -1).sum(axis=(0, 2))
    return grad_x, grad_w, grad_b if ctx.needs_input_grad[2] else None


def _direct_backward(ctx, grad_out, x, weight):
    """The backward of a depthwise conv by the compiled kernels; x (saved when dL/dW is
    needed) may come in Conv1d's 3-D shape."""
    grad_x, grad_w = ctx.direct.depthwise_conv2d_backward(
        grad_out, x, weight, ctx.x_shape, ctx.w_shape, ctx.padding, ctx.dilation)
    grad_b = None
    if ctx.needs_input_grad[2]:
        n, o = grad_out.shape[:2]
        grad_b = grad_out.reshape(n, o, -1).sum(axis=(0, 2))
    return grad_x, grad_w, grad_b


def _transposed_padding(ctx):
    """For stride 1, the padding with which dL/dx is itself a convolution of dL/dy (see
    _grad_input_by_conv): d*(k-1) - p on each side; None when that does not apply or does not
    pay (stride > 1, a padding larger than the dilated kernel, more output than input
    channels)."""
    if ctx.stride != (1, 1) or ctx.w_shape[0] > ctx.x_shape[1]:
        # with more output than input channels, im2col of dL/dy would be larger than the
        # column blocks that _col2im_gemm adds back (measured: docs/ops/conv.md, 'dL/dx as
        # a convolution')
        return None
    _, _, kh, kw = ctx.w_shape
    (top, bottom), (left, right) = ctx.padding
    reach_h, reach_w = ctx.dilation[0] * (kh - 1), ctx.dilation[1] * (kw - 1)
    pads = ((reach_h - top, reach_h - bottom), (reach_w - left, reach_w - right))
    if min(min(p) for p in pads) < 0:
        return None
    return pads


def _grad_input_by_conv(weight, grad_out, ctx):
    """dL/dx for stride 1 as one more convolution: each x_pad pixel collects dL/dy from the
    windows that contain it, which is the correlation of dL/dy (padded by d*(k-1) - p) with
    the kernel flipped in both spatial axes and its in/out channels swapped (per group):

        dL/dx[n, c] = sum_o sum_(i, j) dL/dy_pad[n, o, h + d*i, w + d*j] * W[o, c, k-1-i, k-1-j]

    One im2col of dL/dy and one GEMM, faster than adding kh*kw column blocks back into place
    (_col2im_gemm), which remains for strided convolutions (measured: docs/ops/conv.md,
    'dL/dx as a convolution')."""
    o, cg, kh, kw = weight.shape
    g = ctx.groups
    # (g, O/g, C/g, kh, kw) -> (g, C/g, O/g, kh, kw), flipped: the weight of the transposed conv
    flipped = weight.reshape(g, o // g, cg, kh, kw).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
    flipped = np.ascontiguousarray(flipped).reshape(g * cg, o // g, kh, kw)
    scratch = _Scratch()
    grad_x, _ = _conv2d_forward(scratch, grad_out, flipped, None, (1, 1),
                                _transposed_padding(ctx), ctx.dilation, g)
    return grad_x


def _conv_cost(call, name, sizes):
    """The Cost of a Conv2d or Conv1d call (``sizes``: the formula's output and kernel
    letters). With K_g = C/g * kernel cells, one product per output element and kernel
    cell: Y = W_2d @ X_col is 2*y.size*K_g, + y.size for b; backward 2*y.size*K_g for each
    of dL/dW_2d and dL/dX_col that is needed, col2im adds each of the g*K_g*N*L entries of
    dL/dX_col to its pixel (one add per entry, a scatter-add), dL/db sums N*L per channel."""
    x, w = call.inputs[:2]
    (y,) = call.outputs
    k_g = math.prod(w.shape[1:])
    gemm = 2 * y.size * k_g
    backward_gemm = gemm * (call.needs(0) + call.needs(1))
    col2im = call.needs(0) * (y.size // w.shape[0]) * call_arg(call, 6, "groups", 1) * k_g
    bias = call.needs(2) * reduction_flops(y.size, w.shape[0])
    has_bias = call_arg(call, 2, "bias") is not None
    return Cost(gemm + has_bias * y.size, backward_gemm + col2im + bias,
                f"{name} x({shape_text(x)}) w({shape_text(w)}) -> {shape_text(y)}: "
                f"2*N*Cout*{sizes[0]}*(Cin/groups)*{sizes[1]} + bias",
                gemm_flops=gemm, backward_gemm_flops=backward_gemm)


class _Scratch:
    """Somewhere for _conv2d_forward to note shapes when it computes a gradient."""


class Conv2d(Function):
    """y = conv2d(x, W) + b, cross-correlation over (H, W) by im2col + GEMM.
    x:(N, C, H, W), W:(O, C/g, kh, kw), b:(O,) or None, y:(N, O, Ho, Wo), L = Ho*Wo,
    K = C*kh*kw (see the module docstring for Ho, Wo and X_col:(K, N*L)).

    Forward:  Y = W_2d @ X_col + b      (O, K) @ (K, N*L) -> (O, N*L), reordered to NCHW
    by the copy that adds b. With groups each group is its own such product: channels
    [k*C/g, (k+1)*C/g) of x meet only filters [k*O/g, (k+1)*O/g).

    Backward, with dL/dY:(O, N*L) (dL/dy with its axes reordered):
      dL/db    = sum over the N*L columns of dL/dY                          (O,)
      dL/dW_2d = dL/dY @ X_col^T  (the sum over samples and positions is the GEMM's own)
                                                                            (O, K)
      dL/dX_col = W_2d^T @ dL/dY                                            (K, N*L)
      dL/dx    = col2im(dL/dX_col): each entry of X_col was a copy of one pixel of x_pad, so
                 its gradient is added back to that pixel (a pixel sits in up to kh*kw
                 windows), then the padding is cut away                     (N, C, H, W)

    In the row layout (stride 1, see the module docstring) the same products run per kernel
    column j, on X_row shifted by j*dw and over the Wp columns of every padded row:
      Y_wide    = sum_j W_j @ shift_j(X_row)                              (O, N*Ho*Wp)
      dL/dW_j   = dL/dY_wide @ shift_j(X_row)^T                           (O, C*kh)
    with dL/dY_wide zero on the Wp - Wo thrown-away columns of each row, so they add nothing;
    dL/dx and dL/db do not depend on the layout.

    Saves: X_col (K, N*L) when dL/dW is needed, reused by the dL/dW GEMM instead of being
    rebuilt: kh*kw times the input's memory at stride 1 (9x for a 3x3 'same' conv), less for
    larger strides; in the row layout X_row instead, kh times the padded input (3x); with
    oneDNN (float32) or the direct kernels x itself (or x padded). W when dL/dx is needed.
    Neither when not needed (a frozen layer keeps no X_col; the first layer computes no
    dL/dx). Attrs: stride (sh, sw), padding ((top, bottom), (left, right)), dilation (dh,
    dw), groups; the functional API checks them.
    Reference: conv2d_reference_backward, the same rule without the speed paths.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)),
                dilation=(1, 1), groups=1):
        y, cols = _conv2d_forward(ctx, x, weight, bias, stride, padding, dilation, groups)
        ctx.save_for_backward(_cols_to_save(ctx, cols, x),
                              weight if ctx.needs_input_grad[0] else None)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        cols, weight = ctx.saved_tensors
        return _conv2d_backward(ctx, grad_out, cols, weight)

    @staticmethod
    def cost(call):
        """2*N*O*Ho*Wo*(C/g)*kh*kw (+ N*O*Ho*Wo for b); backward the same product for each
        of dL/dW, dL/dx needed, plus col2im's scatter-adds and dL/db's sums (_conv_cost)."""
        return _conv_cost(call, "conv2d", ("Hout*Wout", "kh*kw"))


class Conv1d(Function):
    """y = conv1d(x, W) + b: Conv2d on x:(N, C, 1, L_in), W:(O, C/g, 1, k) (views, no copy).
    x:(N, C, L_in), W:(O, C/g, k), b:(O,) or None, y:(N, O, L_out),
    L_out = floor((L_in + left + right - d*(k-1) - 1) / s) + 1.

    dL/dx, dL/dW, dL/db: Conv2d's, with the size-1 H axis dropped again.
    Saves: as Conv2d (X_col:(C*k, N*L_out) when dL/dW is needed, W when dL/dx is needed).
    Attrs: stride (s,), padding ((left, right),), dilation (d,), groups.
    Reference: conv2d_reference_backward on the same views (H = kh = 1).
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1,), padding=((0, 0),), dilation=(1,),
                groups=1):
        y, cols = _conv2d_forward(ctx, x[:, :, None, :], weight[:, :, None, :], bias,
                                  (1,) + tuple(stride), ((0, 0),) + tuple(padding),
                                  (1,) + tuple(dilation), groups)
        ctx.save_for_backward(_cols_to_save(ctx, cols, x),
                              weight if ctx.needs_input_grad[0] else None)
        return y[:, :, 0, :]

    @staticmethod
    def backward(ctx, grad_out):
        cols, weight = ctx.saved_tensors
        weight = weight[:, :, None, :] if weight is not None else None
        grad_x, grad_w, grad_b = _conv2d_backward(ctx, grad_out[:, :, None, :], cols, weight)
        return (grad_x[:, :, 0, :] if grad_x is not None else None,
                grad_w[:, :, 0, :] if grad_w is not None else None, grad_b)

    @staticmethod
    def cost(call):
        """Conv2d's with H = kh = 1: 2*N*O*L_out*(C/g)*k (+ N*O*L_out for b), and backward
        alike (_conv_cost)."""
        return _conv_cost(call, "conv1d", ("Lout", "k"))


# ---------------------------------------------------------------- the reference backward
def conv2d_reference_backward(x, weight, bias, grad_out, stride=(1, 1),
                              padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """The backward of Conv2d straight from its docstring, without the speed paths: a plain
    im2col, the three products per group, and col2im.

        dL/db     = sum over the N*L columns of dL/dY                           (O,)
        dL/dW_2d  = dL/dY @ X_col^T                                             (O, K)
        dL/dX_col = W_2d^T @ dL/dY                                              (K, N*L)
        dL/dx     = col2im(dL/dX_col), then the padding cut away                (N, C, H, W)

    x:(N, C, H, W), weight:(O, C/g, kh, kw), bias:(O,) or None, grad_out = dL/dy:(N, O, Ho,
    Wo); the attributes are Conv2d.forward's. Returns (dL/dx, dL/dW, dL/db), one gradient per
    input in that input's shape (dL/db is None when bias is None), computed in x's dtype.
    Conv1d is this with H = kh = 1.

    Example (the worked example of docs/ops/conv.md):
        >>> x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
        >>> k = np.array([[[[1.0, 0.0], [-1.0, 1.0]]]])
        >>> grad_y = np.array([[[[0.5, -0.5], [1.0, 0.0]]]])
        >>> grad_x, grad_k, grad_b = conv2d_reference_backward(x, k, np.ones(1), grad_y)
        >>> grad_x[0, 0].tolist()
        [[0.5, -0.5, 0.0], [0.5, 1.0, -0.5], [-1.0, 1.0, 0.0]]
        >>> grad_k.tolist(), grad_b.tolist()
        ([[[[3.5, 4.5], [6.5, 7.5]]]], [1.0])
    """
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    out_size = grad_out.shape[2:]
    (top, bottom), (left, right) = padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    # rows (c, i, j) split into g groups of C/g * kh * kw rows; columns (n, ho, wo)
    x_col = _reference_im2col(x_pad, (kh, kw), out_size, stride, dilation)
    x_col = x_col.reshape(groups, cg * kh * kw, -1)
    w_2d = weight.reshape(groups, o // groups, cg * kh * kw)
    grad_y = grad_out.transpose(1, 0, 2, 3).reshape(groups, o // groups, -1)
    grad_b = grad_y.sum(axis=2).reshape(o) if bias is not None else None
    grad_w = (grad_y @ x_col.transpose(0, 2, 1)).reshape(weight.shape)
    grad_x_col = w_2d.transpose(0, 2, 1) @ grad_y
    grad_x_pad = _reference_col2im(grad_x_col.reshape(c, kh, kw, n, *out_size), x_pad.shape,
                                   stride, dilation)
    return grad_x_pad[:, :, top:top + h, left:left + w], grad_w, grad_b


def _window_pixels(i, j, out_size, stride, dilation):
    """The rows (Ho, 1) and columns (1, Wo) of x_pad that kernel offset (i, j) sees in the
    windows: x_pad[..., ho * sh + i * dh, wo * sw + j * dw]."""
    (ho, wo), (sh, sw), (dh, dw) = out_size, stride, dilation
    return (i * dh + sh * np.arange(ho))[:, None], (j * dw + sw * np.arange(wo))[None, :]


def _reference_im2col(x_pad, kernel, out_size, stride, dilation):
    """X_col:(C, kh, kw, N, Ho, Wo), X_col[c, i, j, n, ho, wo] = x_pad[n, c, ho * sh + i * dh,
    wo * sw + j * dw]: one indexed copy per kernel offset (i, j)."""
    n, c = x_pad.shape[:2]
    x_col = np.empty((c,) + tuple(kernel) + (n,) + tuple(out_size), dtype=x_pad.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            rows, cols = _window_pixels(i, j, out_size, stride, dilation)
            x_col[:, i, j] = x_pad[:, :, rows, cols].transpose(1, 0, 2, 3)
    return x_col


def _reference_col2im(grad_x_col, x_pad_shape, stride, dilation):
    """dL/dx_pad from dL/dX_col:(C, kh, kw, N, Ho, Wo): every entry of X_col was a copy of one
    pixel of x_pad, so its gradient is added back to that pixel (np.add.at adds, never
    overwrites)."""
    c, kh, kw, n, ho, wo = grad_x_col.shape
    grad_x_pad = np.zeros(x_pad_shape, dtype=grad_x_col.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _window_pixels(i, j, (ho, wo), stride, dilation)
            np.add.at(grad_x_pad, (slice(None), slice(None), rows, cols),
                      grad_x_col[:, i, j].transpose(1, 0, 2, 3))
    return grad_x_pad
