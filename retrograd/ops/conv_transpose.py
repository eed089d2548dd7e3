"""Transposed convolution (PyTorch's conv_transpose, sometimes called deconvolution):
ConvTranspose2d and ConvTranspose1d, built from the convolution machinery of ops/conv.py.

Notation: input x:(N, Ci, H, W), weight W:(Ci, Co/g, kh, kw) (PyTorch's layout: input
channels first), bias b:(Co,), g groups, stride (sh, sw), padding (ph, pw), output_padding
(oph, opw), dilation (dh, dw), output y:(N, Co, Ho, Wo) with

    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1          (and Wo alike).

Take the convolution C of ops/conv.py that maps a (N, Co, Ho, Wo) input to a (N, Ci, H, W)
output with the same weight W (read as (O, C/g, kh, kw) = (Ci, Co/g, kh, kw)), stride,
padding (ph, ph) and dilation: then conv_transpose(x) = C^T x + b, the transpose of C's
linear map. Each input pixel x[n, ci, h, w] scatters W[ci, :, i, j] * x[n, ci, h, w] onto
y[n, :, h*sh - ph + i*dh, w*sw - pw + j*dw]; the output_padding rows and columns at the end
only make y larger (they receive what lands there, zero beyond the last window).

So the forward is C's dL/dinput (for float32 oneDNN's backward-data primitive of C, where it
is installed; else col2im(W_2d^T @ X), or at stride 1 a convolution of x with the flipped
kernel), and the backward runs C forward: dL/dx = C(dL/dy) (a plain
convolution of dL/dy with W), and dL/dW is C's weight gradient with the roles swapped.

float16 and bfloat16 arrays are computed in float32 and rounded back once (PyTorch
accumulates them in float32 too): col2im's scatter-adds in float16 would overflow on
partial sums whose total fits.
"""

import math

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text
from retrograd.autograd.function import Function
from retrograd.ops._parallel import copy_contiguous
from retrograd.ops.conv import (_col2im_gemm, _conv2d_backward, _conv2d_forward,
                                _grad_input_by_conv, _im2col, _onednn_plan, _pad, _Scratch,
                                _transposed_padding)

__all__ = ["ConvTranspose2d", "ConvTranspose1d", "conv_transpose_output_size",
           "conv_transpose2d_reference"]


def conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation):
    """Output length along one axis: (size - 1) * stride - 2 * padding + dilation *
    (kernel - 1) + output_padding + 1.

    Example:
        >>> conv_transpose_output_size(4, 3, 2, 1, 1, 1)
        8
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _widened(*arrays):
    """The arrays in float32 when they are float16 or bfloat16 (None stays None)."""
    return [a.astype(np.float32) if a is not None and a.dtype.itemsize < 4 else a
            for a in arrays]


def _narrowed(array, dtype):
    return array.astype(dtype, copy=False) if array is not None else None


def _conv_of(x_shape, weight_shape, stride, padding, output_padding, dilation, groups):
    """The convolution C whose transpose this is, as the attributes ops/conv.py's helpers
    read from a ctx: C's input is y's shape, its output x's."""
    n, _, h, w = x_shape
    _, cog, kh, kw = weight_shape
    conv = _Scratch()
    conv.x_shape = (n, cog * groups) + tuple(
        conv_transpose_output_size(s, k, st, p, op, d) for s, k, st, p, op, d in
        zip((h, w), (kh, kw), stride, padding, output_padding, dilation))
    conv.w_shape, conv.out_size = tuple(weight_shape), (h, w)
    conv.stride, conv.dilation, conv.groups = tuple(stride), tuple(dilation), groups
    conv.padding = tuple((p, p) for p in padding)
    return conv


def _transposed_forward(x, weight, conv, output_padding):
    """y = C^T x, without bias: by oneDNN's backward-data primitive of C where it takes it
    (float32), at stride 1 (where it pays) a convolution of x with the flipped kernel, else
    col2im(W_2d^T @ X)."""
    by_conv = _Scratch()
    vars(by_conv).update(vars(conv))
    # C read with padding (p, p - op): same windows, and an input of exactly y's size,
    # which is what the convolution by the flipped kernel must produce
    by_conv.padding = tuple((p, p - op) for (p, _), op in zip(conv.padding, output_padding))
    plan = _onednn_plan_of(x, weight, by_conv)
    if plan is not None:
        y, _, _ = plan.backward(np.ascontiguousarray(x), None, np.ascontiguousarray(weight))
        return y
    if _transposed_padding(by_conv) is not None:
        return _grad_input_by_conv(weight, x, by_conv)
    n, ci, h, w = x.shape
    g = conv.groups
    # x in the GEMM layout of C's dL/dY: (g, Ci/g, N*H*W)
    x_cols = copy_contiguous(np.swapaxes(x.reshape(n, ci, h * w), 0, 1))
    return _col2im_gemm(weight, x_cols.reshape(g, ci // g, n * h * w), conv)


def _onednn_plan_of(x, weight, conv):
    """oneDNN's primitives of C (ops/conv.py's _onednn_plan), whose dL/dinput is this
    forward, or None; also None for an output_padding wider than the padding (C's far padding
    p - op would be negative)."""
    if min(p for pads in conv.padding for p in pads) < 0:
        return None
    return _onednn_plan((x, weight), conv.x_shape, weight.shape, conv.out_size, False,
                        conv.stride, conv.padding, conv.dilation, conv.groups)


def _backward_pads(conv, output_padding):
    """(dL/dy cropped to what C's windows read, C's padding for it): C with padding (p, p)
    reads y's rows up to (H-1)*s + d*(k-1) - p; past that (output_padding > padding) dL/dy
    never reaches x. The result makes C's output exactly (H, W)."""
    crops, pads = [], []
    for (p, _), op in zip(conv.padding, output_padding):
        crops.append(max(op - p, 0))
        pads.append((p, max(p - op, 0)))
    return crops, tuple(pads)


def _im2col_of(run, grad_c, conv, pads):
    """X_col of C's input dL/dy (cropped), as _conv2d_forward would make it, without the
    product with W (for dL/dW alone); notes on ``run`` what _conv2d_backward reads."""
    _, _, kh, kw = conv.w_shape
    run.x_shape, run.w_shape, run.out_size = grad_c.shape, conv.w_shape, conv.out_size
    run.stride, run.padding, run.dilation = conv.stride, pads, conv.dilation
    run.groups, run.width, run.direct, run.dense = conv.groups, None, None, None
    run.onednn = None
    return _im2col(_pad(grad_c, pads), (kh, kw), conv.out_size, conv.stride, conv.dilation)


def _transposed_backward(ctx, grad_out, x, weight):
    """(dL/dx, dL/dW, dL/db) on 4-D arrays: C run forward on dL/dy gives dL/dx and, from
    the same im2col of dL/dy, C's weight gradient with x in the place of dL/dY gives dL/dW."""
    need_x, need_w, need_b = (tuple(ctx.needs_input_grad) + (False,))[:3]   # bias optional
    conv = _conv_of(ctx.x_shape, ctx.w_shape, ctx.stride, ctx.padding, ctx.output_padding,
                    ctx.dilation, ctx.groups)
    (crop_h, crop_w), pads = _backward_pads(conv, ctx.output_padding)
    grad_c = grad_out[:, :, :grad_out.shape[2] - crop_h, :grad_out.shape[3] - crop_w]
    grad_c = np.ascontiguousarray(grad_c)
    grad_x = grad_w = grad_b = None
    run = _Scratch()
    run.needs_input_grad = (False, need_w, False)
    if need_x:
        grad_x, cols = _conv2d_forward(run, grad_c, weight, None, conv.stride, pads,
                                       conv.dilation, conv.groups)
    elif need_w:
        cols = _im2col_of(run, grad_c, conv, pads)
    if need_w:
        _, grad_w, _ = _conv2d_backward(run, x, cols, None)
    if need_b:
        n, co = grad_out.shape[:2]
        grad_b = grad_out.reshape(n, co, -1).sum(axis=(0, 2))
    return (grad_x if need_x else None), grad_w, grad_b


def _conv_transpose_cost(call, name, sizes):
    """The Cost of a ConvTranspose2d or ConvTranspose1d call: with M = x.size * Co/g *
    kernel cells multiply-adds, the forward's GEMM is 2M and col2im adds each of the M
    entries of Y_col to its pixel (M, counting those that land in the cut padding), + y.size
    for b; backward 2M for each of dL/dx (C run forward) and dL/dW that is needed, and
    dL/db's sums."""
    x, w = call.inputs[:2]
    (y,) = call.outputs
    macs = x.size * math.prod(w.shape[1:])
    gemm = 2 * macs
    backward_gemm = gemm * (call.needs(0) + call.needs(1))
    bias = call.needs(2) * reduction_flops(y.size, w.shape[1] * call_arg(call, 7, "groups", 1))
    has_bias = call_arg(call, 2, "bias") is not None
    return Cost(gemm + macs + has_bias * y.size, backward_gemm + bias,
                f"{name} x({shape_text(x)}) w({shape_text(w)}) -> {shape_text(y)}: "
                f"3*N*Cin*{sizes[0]}*(Cout/groups)*{sizes[1]} (GEMM + col2im adds) + bias",
                gemm_flops=gemm, backward_gemm_flops=backward_gemm)


class ConvTranspose2d(Function):
    """y = conv_transpose2d(x, W) + b = C^T x + b, C the convolution of the module docstring.
    x:(N, Ci, H, W), W:(Ci, Co/g, kh, kw), b:(Co,) or None, y:(N, Co, Ho, Wo), L = H*W.

    Forward, with X:(Ci, N*L) (x with its axes reordered), per group:
      Y_col = W_2d^T @ X                  (Co/g*kh*kw, Ci/g) @ (Ci/g, N*L) -> (K, N*L)
      y     = col2im(Y_col) + b: every column entry added to the output pixel its window
              position lands on, the padding cut away
    (at stride 1: y = conv2d(x padded by d*(k-1) - p, W flipped in H and W with its
    channel axes swapped), the same numbers with one im2col of x).

    Backward (y is linear in x and in W):
      dL/dx = C(dL/dy) = conv2d(dL/dy, W, stride, padding, dilation, groups)   (N, Ci, H, W)
      dL/dW[ci, co, i, j] = sum over n, h, w of x[n, ci, h, w] *
                            dL/dy_pad[n, co, h*sh + i*dh, w*sw + j*dw]
                          = X @ im2col(dL/dy)^T per group       (Ci, Co/g*kh*kw)
      dL/db = dL/dy summed over N, Ho, Wo                                      (Co,)
    dL/dx and dL/dW share the one im2col of dL/dy that C's forward makes.
    Saves: x when dL/dW is needed, W when dL/dx is needed (nothing else: the backward's
    im2col is made from dL/dy). Attrs: stride (sh, sw), padding (ph, pw), output_padding
    (oph, opw), dilation (dh, dw), groups; the functional API checks them.
    Once differentiable, as Conv2d.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=(0, 0),
                output_padding=(0, 0), dilation=(1, 1), groups=1):
        conv = _conv_of(x.shape, weight.shape, stride, padding, output_padding, dilation,
                        groups)
        x_wide, w_wide, b_wide = _widened(x, weight, bias)
        y = _transposed_forward(x_wide, w_wide, conv, output_padding)
        if bias is not None:
            y += b_wide.reshape(-1, 1, 1)
        y = _narrowed(y, x.dtype)
        ctx.x_shape, ctx.w_shape, ctx.groups = x.shape, weight.shape, groups
        ctx.stride, ctx.padding, ctx.dilation = stride, padding, dilation
        ctx.output_padding = output_padding
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None,
                              weight if ctx.needs_input_grad[0] else None)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grads = _transposed_backward(ctx, *_widened(grad_out, x, weight))
        return tuple(_narrowed(g, grad_out.dtype) for g in grads)[:len(ctx.needs_input_grad)]

    @staticmethod
    def cost(call):
        """2*N*Ci*H*W*(Co/g)*kh*kw for the GEMM, half that again for col2im's adds (+ y.size
        for b); backward the GEMM's 2*N*Ci*H*W*(Co/g)*kh*kw for each of dL/dx, dL/dW needed,
        and dL/db's sums (_conv_transpose_cost)."""
        return _conv_transpose_cost(call, "conv_transpose2d", ("Hin*Win", "kh*kw"))


class ConvTranspose1d(Function):
    """y = conv_transpose1d(x, W) + b: ConvTranspose2d on x:(N, Ci, 1, L), W:(Ci, Co/g, 1, k)
    (views, no copy). x:(N, Ci, L), W:(Ci, Co/g, k), b:(Co,) or None, y:(N, Co, L_out),
    L_out = (L - 1)*s - 2*p + d*(k - 1) + op + 1.

    dL/dx, dL/dW, dL/db: ConvTranspose2d's, with the size-1 H axis dropped again.
    Saves: as ConvTranspose2d. Attrs: stride (s,), padding (p,), output_padding (op,),
    dilation (d,), groups.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1,), padding=(0,), output_padding=(0,),
                dilation=(1,), groups=1):
        y = ConvTranspose2d.forward(ctx, x[:, :, None, :], weight[:, :, None, :], bias,
                                    (1,) + tuple(stride), (0,) + tuple(padding),
                                    (0,) + tuple(output_padding), (1,) + tuple(dilation),
                                    groups)
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None,
                              weight if ctx.needs_input_grad[0] else None)
        return y[:, :, 0, :]

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x, grad_w, grad_b = _transposed_backward(
            ctx, *_widened(grad_out[:, :, None, :],
                           x[:, :, None, :] if x is not None else None,
                           weight[:, :, None, :] if weight is not None else None))
        grads = (_narrowed(grad_x[:, :, 0, :] if grad_x is not None else None, grad_out.dtype),
                 _narrowed(grad_w[:, :, 0, :] if grad_w is not None else None, grad_out.dtype),
                 _narrowed(grad_b, grad_out.dtype))
        return grads[:len(ctx.needs_input_grad)]

    @staticmethod
    def cost(call):
        """ConvTranspose2d's with H = kh = 1 (_conv_transpose_cost)."""
        return _conv_transpose_cost(call, "conv_transpose1d", ("Lin", "k"))


# ---------------------------------------------------------------- the reference
def conv_transpose2d_reference(x, weight, bias, grad_out=None, stride=(1, 1), padding=(0, 0),
                               output_padding=(0, 0), dilation=(1, 1), groups=1):
    """ConvTranspose2d straight from its definition, kernel offset by kernel offset, without
    the conv machinery: each (i, j) of the kernel scatters

        y_full[n, co, h*sh + i*dh, w*sw + j*dw] += sum over ci of x[n, ci, h, w] * W[ci, co, i, j]

    (channels within a group), then y = y_full with the padding cut from each side and the
    output_padding zeros added at the end. With ``grad_out`` = dL/dy it returns (y, dL/dx,
    dL/dW, dL/db), each the gather that is the adjoint of that scatter:

        dL/dx[n, ci, h, w]  = sum over co, i, j of dL/dy_full[n, co, h*sh + i*dh, ...]
                                                    * W[ci, co, i, j]
        dL/dW[ci, co, i, j] = sum over n, h, w of x[n, ci, h, w]
                                                  * dL/dy_full[n, co, h*sh + i*dh, ...]

    Example:
        >>> x = np.array([[[[1.0, 2.0]]]])
        >>> conv_transpose2d_reference(x, np.array([[[[1.0, 10.0]]]]), None,
        ...                            stride=(1, 2))[0, 0].tolist()
        [[1.0, 10.0, 2.0, 20.0]]
    """
    n, ci, h, w = x.shape
    _, cog, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    full = ((h - 1) * sh + dh * (kh - 1) + 1 + output_padding[0],
            (w - 1) * sw + dw * (kw - 1) + 1 + output_padding[1])
    xg = x.reshape(n, groups, ci // groups, h, w)
    wg = weight.reshape(groups, ci // groups, cog, kh, kw)
    y_full = np.zeros((n, groups, cog) + full, dtype=x.dtype)
    grad_full = None
    if grad_out is not None:
        grad_full = np.zeros((n, groups * cog) + full, dtype=x.dtype)
        grad_full[:, :, ph:ph + grad_out.shape[2], pw:pw + grad_out.shape[3]] = grad_out
        grad_full = grad_full.reshape(n, groups, cog, *full)
        grad_x, grad_w = np.zeros_like(xg), np.zeros_like(wg)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + (h - 1) * sh + 1, sh)
            cols = slice(j * dw, j * dw + (w - 1) * sw + 1, sw)
            y_full[..., rows, cols] += np.einsum("ngchw,gco->ngohw", xg, wg[..., i, j])
            if grad_full is not None:
                g = grad_full[..., rows, cols]
                grad_x += np.einsum("ngohw,gco->ngchw", g, wg[..., i, j])
                grad_w[..., i, j] += np.einsum("ngchw,ngohw->gco", xg, g)
    ho, wo = full[0] - 2 * ph, full[1] - 2 * pw
    y = y_full.reshape(n, groups * cog, *full)[:, :, ph:ph + ho, pw:pw + wo]
    y = y + bias.reshape(-1, 1, 1) if bias is not None else y.copy()
    if grad_out is None:
        return y
    grad_b = grad_out.sum(axis=(0, 2, 3)) if bias is not None else None
    return y, grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b
