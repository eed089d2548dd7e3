"""Worked example of the 2-D convolution (retrograd/ops/conv.py): im2col patches, one GEMM,
dL/dW from the patches, dL/dX twice, by col2im and as a full convolution of dL/dY with the
flipped kernel."""

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError

__all__ = []


def _padded(x, padding):
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


def _im2col(x_pad, kh, kw, stride, dilation, out_h, out_w):
    """X_col[(c, i, j), (n, ho, wo)] = x_pad[n, c, ho*stride + i*dilation,
    wo*stride + j*dilation]"""
    n, c = x_pad.shape[:2]
    cols = np.empty((c, kh, kw, n, out_h, out_w))
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dilation, i * dilation + stride * (out_h - 1) + 1, stride)
            columns = slice(j * dilation, j * dilation + stride * (out_w - 1) + 1, stride)
            cols[:, i, j] = x_pad[:, :, rows, columns].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * out_h * out_w)


def _col2im(cols, x_pad_shape, kh, kw, stride, dilation, out_h, out_w):
    """The adjoint of _im2col: each column entry is added back to the pixel it was copied from."""
    n, c = x_pad_shape[:2]
    cols = cols.reshape(c, kh, kw, n, out_h, out_w)
    grad = np.zeros(x_pad_shape)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dilation, i * dilation + stride * (out_h - 1) + 1, stride)
            columns = slice(j * dilation, j * dilation + stride * (out_w - 1) + 1, stride)
            grad[:, :, rows, columns] += cols[:, i, j].transpose(1, 0, 2, 3)
    return grad


def _full_convolution(g, weight, stride, dilation, x_pad_shape):
    """dL/dx_pad as a correlation of the stride-dilated, zero-padded dL/dY with the flipped,
    dilated kernel, channels swapped: returns (the zero-stuffed, padded dL/dY, the flipped
    kernel, dL/dx_pad)."""
    n, o, out_h, out_w = g.shape
    kh, kw = weight.shape[2:]
    stuffed = np.zeros((n, o, (out_h - 1) * stride + 1, (out_w - 1) * stride + 1))
    stuffed[:, :, ::stride, ::stride] = g
    ph, pw = dilation * (kh - 1), dilation * (kw - 1)
    stuffed = np.pad(stuffed, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    flipped = weight[:, :, ::-1, ::-1]
    height, width = stuffed.shape[2] - ph, stuffed.shape[3] - pw
    full = np.zeros((n, weight.shape[1], height, width))
    for i in range(kh):
        for j in range(kw):
            window = stuffed[:, :, i * dilation:i * dilation + height,
                             j * dilation:j * dilation + width]
            full += np.einsum("nohw,oc->nchw", window, flipped[:, :, i, j])
    grad = np.zeros(x_pad_shape)  # rows and columns no window reached keep a zero gradient
    grad[:, :, :min(height, x_pad_shape[2]), :min(width, x_pad_shape[3])] = \
        full[:, :, :x_pad_shape[2], :x_pad_shape[3]]
    return stuffed, flipped, grad


def _check_fits(x, kernel, padding, dilation):
    for axis, name in ((2, "height"), (3, "width")):
        span = dilation * (kernel[axis - 2] - 1) + 1
        if x.shape[axis] + 2 * padding < span:
            padded = f" ({x.shape[axis] + 2 * padding} padded)" if padding else ""
            raise ExplainError(
                f"explain conv2d: X's {name} (dimension {axis} of X, shape "
                f"{'x'.join(map(str, x.shape))}) is {x.shape[axis]}{padded}, smaller than the "
                f"kernel's span dilation*(k-1)+1 = {span}")


@explains("conv2d", family="conv", aliases=("conv", "convolution"),
          summary="2-D convolution (cross-correlation, as in PyTorch) by im2col and one GEMM",
          options=(Option("stride", int, 1, "step of the kernel"),
                   Option("padding", int, 0, "zeros added on each side"),
                   Option("dilation", int, 1, "spacing of the kernel taps"),
                   Option("kernel", int, 3, "kernel size (when W is not given)"),
                   Option("out_channels", int, 1, "output channels (when W is not given)")))
def conv2d(ex, stride, padding, dilation, kernel, out_channels):
    from retrograd.nn import functional as F

    for name, value, least in (("stride", stride, 1), ("padding", padding, 0),
                               ("dilation", dilation, 1), ("kernel", kernel, 1),
                               ("out_channels", out_channels, 1)):
        if value < least:
            raise ExplainError(f"explain conv2d: {name} must be >= {least}, got {value}")
    x = ex.input("X", (1, 1, 4, 4), primary=True, doc="input (N, C, H, W)")
    w = ex.input("W", (out_channels, x.shape[1], kernel, kernel), aliases=("K",),
                 doc="kernel (O, C, kh, kw)")
    if w.shape[1] != x.shape[1]:
        raise ExplainError(f"explain conv2d: W has {w.shape[1]} input channels (dimension 1 of "
                           f"W, shape {'x'.join(map(str, w.shape))}) but X has {x.shape[1]} "
                           f"(dimension 1 of X, shape {'x'.join(map(str, x.shape))})")
    _check_fits(x, w.shape[2:], padding, dilation)
    b = ex.input("b", (w.shape[0],), doc="bias (O,)")
    (out_shape,) = ex.reference(
        lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation),
        "X", "W", "b")
    n, o, out_h, out_w = out_shape
    kh, kw = w.shape[2:]
    ex.say(f"stride {stride}, padding {padding}, dilation {dilation}: "
           f"Ho = floor((H + 2*{padding} - {dilation}*(kh - 1) - 1) / {stride}) + 1 = {out_h}, "
           f"Wo = {out_w}.")

    ex.section("Forward")
    x_pad = _padded(x, padding)
    if padding:
        ex.show("X_pad", x_pad, f"X with {padding} zero(s) on each side")
    ex.say("im2col: X_col has one column per output position (n, ho, wo) and one row per "
           "kernel tap (c, i, j).")
    cols = ex.show("X_col", _im2col(x_pad, kh, kw, stride, dilation, out_h, out_w),
                   f"X_pad[n, c, ho*{stride} + i*{dilation}, wo*{stride} + j*{dilation}]")
    w2d = ex.show("W_2d", w.reshape(o, -1), "W as a matrix (O, C*kh*kw)")
    y2d = ex.show("Y_2d", w2d @ cols + b[:, None], "W_2d @ X_col + b")
    ex.output("Y", y2d.reshape(o, n, out_h, out_w).transpose(1, 0, 2, 3),
              "Y_2d reshaped to (N, O, Ho, Wo)")

    ex.section("Backward")
    g = ex.upstream(out_shape)
    g2d = g.transpose(1, 0, 2, 3).reshape(o, -1)
    ex.gradient("b", g2d.sum(axis=1), "sum of dL/dY over n, ho, wo")
    ex.gradient("W", (g2d @ cols.T).reshape(w.shape),
                "dL/dY_2d @ X_col^T, reshaped to (O, C, kh, kw): each tap's input pixels "
                "weighted by the gradient of the outputs they fed")
    dcols = ex.show("dL/dX_col", w2d.T @ g2d, "W_2d^T @ dL/dY_2d")
    grad_pad = _col2im(dcols, x_pad.shape, kh, kw, stride, dilation, out_h, out_w)
    crop = (slice(None), slice(None), slice(padding, padding + x.shape[2]),
            slice(padding, padding + x.shape[3]))
    ex.gradient("X", grad_pad[crop], "col2im(dL/dX_col): each entry added back to the pixel "
                "it was copied from" + (", padding cropped" if padding else ""),
                name="dL/dX (col2im)")
    ex.say("The same gradient as a full convolution: put stride-1 zeros between the entries "
           "of dL/dY, pad it with dilation*(k-1) zeros, and slide the kernel flipped by "
           "180 degrees over it.")
    stuffed, flipped, full = _full_convolution(g, w, stride, dilation, x_pad.shape)
    ex.show("dL/dY zero-stuffed and padded", stuffed, "")
    ex.show("W flipped", flipped, "W[:, :, ::-1, ::-1]")
    ex.gradient("X", full[crop], "correlate(padded dL/dY, flipped W)"
                + (", padding cropped" if padding else ""), name="dL/dX (full convolution)")
