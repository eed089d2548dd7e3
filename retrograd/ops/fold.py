"""Sliding blocks: Im2col (``F.unfold``) and Col2im (``F.fold``), each the other's adjoint.

Notation: x:(N, C, H, W), kernel (kh, kw), dilation (dh, dw), padding (ph, pw) on both
sides, stride (sh, sw); the blocks are a convolution's receptive fields, Ho x Wo of them,
L = Ho*Wo, with Ho = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1 (Wo alike), and

    cols[n, (c, i, j), (ho, wo)] = x_pad[n, c, ho*sh + i*dh, wo*sw + j*dw]     (N, C*kh*kw, L)

This is the im2col of a convolution (ops/conv.py, the X_col of one sample): unfold is a
convolution's input side without the GEMM, fold is its col2im, which adds every entry back
to the pixel it was copied from (a pixel sits in up to kh*kw blocks; entries on the padding
are dropped). Both run on conv.py's machinery: the (N, C) planes are handed to it as the C*N
channels of one sample, which gives PyTorch's (N, C*kh*kw, L) layout without a transposing
copy. Both are linear, and each is the other's transpose, so each one's backward is the
other op (differentiable again: gradients of gradients work).
"""

import numpy as np

from retrograd._fast import compiled_for
from retrograd.autograd.cost import Cost, shape_text
from retrograd.autograd.function import Function
from retrograd.ops.conv import _im2col, _pad, _unpad, conv_output_size, offset_view

__all__ = ["Im2col", "Col2im", "im2col", "col2im", "blocks_shape"]


def blocks_shape(size, kernel_size, dilation, padding, stride):
    """(Ho, Wo): how many blocks fit along each axis of an (H, W) plane (a value < 1 means
    the dilated kernel does not fit in the padded plane).

    Example:
        >>> blocks_shape((5, 6), (2, 3), (1, 1), (0, 1), (1, 2))
        (4, 3)
    """
    return tuple(conv_output_size(n, k, s, 2 * p, d)
                 for n, k, d, p, s in zip(size, kernel_size, dilation, padding, stride))


def im2col(x, kernel_size, dilation, padding, stride):
    """cols:(N, C*kh*kw, L) from x:(N, C, H, W) (the formula of the module docstring): one
    copy out of a strided view (conv's _im2col), a new array even where it could be a view
    of x (a 1x1 kernel)."""
    n, c, h, w = x.shape
    (ph, pw), (kh, kw) = padding, kernel_size
    out_size = blocks_shape((h, w), kernel_size, dilation, padding, stride)
    planes = x.reshape(1, n * c, h, w)
    cols = _im2col(_pad(planes, ((ph, ph), (pw, pw))), kernel_size, out_size, stride, dilation)
    if np.may_share_memory(cols, x):
        cols = cols.copy()
    return cols.reshape(n, c * kh * kw, out_size[0] * out_size[1])


def col2im(cols, output_size, kernel_size, dilation, padding, stride):
    """y:(N, C, H, W), (H, W) = output_size, from cols:(N, C*kh*kw, L): every entry added to
    the pixel of y it stands for, entries on the padding dropped. The compiled col2im of
    retrograd/_numba/conv.py for float32 and float64, else _col2im_by_offsets; float16 and
    bfloat16 are summed in float32 and rounded once."""
    n, rows, length = cols.shape
    (kh, kw), (h, w) = kernel_size, output_size
    c = rows // (kh * kw)
    out_size = blocks_shape(output_size, kernel_size, dilation, padding, stride)
    flat = np.ascontiguousarray(cols).reshape(n * rows, length)
    kernels = compiled_for("conv", flat)
    if kernels is not None:
        y = kernels.col2im(flat, (1, n * c, h, w), kernel_size, out_size, stride, padding,
                           dilation)
        return y.reshape(n, c, h, w)
    acc = np.float32 if cols.dtype.itemsize < 4 else cols.dtype
    blocks = cols.astype(acc, copy=False).reshape(n, c, kh, kw, *out_size)
    y = _col2im_by_offsets(blocks, (n, c, h, w), padding, stride, dilation)
    return y.astype(cols.dtype, copy=False)


def _col2im_by_offsets(blocks, shape, padding, stride, dilation):
    """col2im by NumPy: blocks:(N, C, kh, kw, Ho, Wo) added into a zero-padded (N, C, H +
    2*ph, W + 2*pw) plane, one strided view per kernel offset (i, j) (conv.offset_view),
    then the padding cut away."""
    n, c, kh, kw, ho, wo = blocks.shape
    (ph, pw), pads = padding, ((padding[0], padding[0]), (padding[1], padding[1]))
    y_pad = np.zeros((n, c, shape[2] + 2 * ph, shape[3] + 2 * pw), dtype=blocks.dtype)
    for i in range(kh):
        for j in range(kw):
            offset_view(y_pad, i, j, (ho, wo), stride, dilation)[...] += blocks[:, :, i, j]
    return _unpad(y_pad, pads, shape)


def _attrs(ctx):
    return dict(kernel_size=ctx.kernel_size, dilation=ctx.dilation, padding=ctx.padding,
                stride=ctx.stride)


def _keep_attrs(ctx, kernel_size, dilation, padding, stride):
    ctx.kernel_size, ctx.dilation = tuple(kernel_size), tuple(dilation)
    ctx.padding, ctx.stride = tuple(padding), tuple(stride)


class Im2col(Function):
    """cols = unfold(x): the sliding blocks of x:(N, C, H, W) as columns, (N, C*kh*kw, L)
    (see the module docstring for the layout and L).

    Each entry of cols is a copy of one pixel of x_pad, so its gradient goes back to that
    pixel, and a pixel collects the gradients of all its copies:
        dL/dx = col2im(dL/dcols)                       (N, C, H, W), Col2im's forward
    (entries on the padding are dropped). Linear: as Tensors (create_graph) the backward is
    Col2im itself, so it can be differentiated again.
    Saves: nothing but x's (H, W). Attrs: kernel_size (kh, kw), dilation (dh, dw),
    padding (ph, pw), stride (sh, sw).
    """

    moves_data = "copies of the sliding blocks: no arithmetic (its backward adds)"

    @staticmethod
    def forward(ctx, x, kernel_size, dilation, padding, stride):
        _keep_attrs(ctx, kernel_size, dilation, padding, stride)
        ctx.size = x.shape[2:]
        return im2col(x, kernel_size, dilation, padding, stride)

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return col2im(grad_out, ctx.size, **_attrs(ctx))
        return Col2im.apply(grad_out, output_size=ctx.size, **_attrs(ctx))

    @staticmethod
    def cost(call):
        """No arithmetic forward (copies); backward col2im adds each of the cols.size
        gradient entries into its pixel: cols.size adds."""
        x, cols = call.inputs[0], call.outputs[0]
        return Cost(0, cols.size * call.needs(0),
                    f"unfold {shape_text(x)} -> {shape_text(cols)}: 0; backward cols.size")


class Col2im(Function):
    """y = fold(cols): cols:(N, C*kh*kw, L) summed into y:(N, C, H, W), (H, W) =
    output_size: every entry added to the pixel it stands for (the module docstring's
    formula read from right to left), entries on the padding dropped.

    y is a sum of entries of cols, each used once, so each entry's gradient is the gradient
    of its pixel:
        dL/dcols = im2col(dL/dy)                       (N, C*kh*kw, L), Im2col's forward
    (entries on the padding get 0). Linear: as Tensors (create_graph) the backward is
    Im2col itself.
    Saves: nothing. Attrs: output_size (H, W), kernel_size, dilation, padding, stride.
    """

    @staticmethod
    def forward(ctx, cols, output_size, kernel_size, dilation, padding, stride):
        _keep_attrs(ctx, kernel_size, dilation, padding, stride)
        return col2im(cols, tuple(output_size), **_attrs(ctx))

    @staticmethod
    def backward(ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return im2col(grad_out, **_attrs(ctx))
        return Im2col.apply(grad_out, **_attrs(ctx))

    @staticmethod
    def cost(call):
        """cols.size adds (each entry added into its pixel); backward im2col copies: 0."""
        cols, y = call.inputs[0], call.outputs[0]
        return Cost(cols.size, 0, f"fold {shape_text(cols)} -> {shape_text(y)}: cols.size")
