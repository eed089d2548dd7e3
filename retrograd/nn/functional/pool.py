"""Pooling functions: argument checks and PyTorch's defaults around ops.pool and
ops.unpool; lp_pool is PyTorch's composition of avg_pool (or max_pool) and pow.

The 1-D poolings and unpooling run the 2-D ops on a (N, C, 1, L) view of the input.
"""

import numpy as np

from retrograd import _checks
from retrograd._checks import name_of
from retrograd.ops.pool import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d,
                                pool_output_size)
from retrograd.ops.unpool import MaxUnpool2d
from retrograd.tensor import Tensor

__all__ = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d", "max_unpool1d",
           "max_unpool2d", "lp_pool1d", "lp_pool2d"]


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
               ceil_mode=False, return_indices=False, *, owner=None):
    """Max over each (kh, kw) window of every channel (padding counts as -inf).

    Args:
        input: (N, C, H, W) or (C, H, W).
        kernel_size, stride (default: kernel_size), padding (at most half the kernel),
            dilation: int or (h, w) pair.
        ceil_mode: round the output size up (the last window must still start inside the
            input or its left padding).
        return_indices: also return the argmax of each window as a flat index h*W + w.
        owner: who errors name (a layer passes itself); default "max_pool2d".

    Output: (N, C, Ho, Wo), Ho = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1 (ceil with
    ceil_mode), Wo alike.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[[[1., 5., 2., 0.], [3., 4., 8., 6.]]]])
        >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
        >>> y.tolist(), idx.tolist()
        ([[[[5.0, 8.0]]]], [[[[1, 6]]]])
    """
    owner = "max_pool2d" if owner is None else owner
    kernel, stride, padding, dilation = _window_args(owner, 2, kernel_size, stride, padding,
                                                     dilation)
    x, batched = _batched(owner, input, 2)
    _check_output(owner, x, kernel, stride, padding, dilation, ceil_mode, input.shape)
    out = MaxPool2d.apply(x, kernel_size=kernel, stride=stride, padding=padding,
                          dilation=dilation, ceil_mode=bool(ceil_mode),
                          return_indices=bool(return_indices))
    return out if batched else _unbatch(out)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True, divisor_override=None, *, owner=None):
    """Mean over each (kh, kw) window of every channel (padding counts as 0).

    Args:
        input: (N, C, H, W) or (C, H, W).
        kernel_size, stride (default: kernel_size), padding (at most half the kernel): int
            or (h, w) pair.
        ceil_mode: round the output size up (as max_pool2d).
        count_include_pad: divide by the window's cells inside the padded input (True) or
            inside the input only (False).
        divisor_override: if given, divide every window sum by this instead.
        owner: who errors name (a layer passes itself); default "avg_pool2d".

    Output: (N, C, Ho, Wo), Ho = floor((H + 2*ph - kh) / sh) + 1 (ceil with ceil_mode).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.avg_pool2d(rg.tensor([[[[1., 2., 3., 4.], [5., 6., 7., 8.]]]]), 2).tolist()
        [[[[3.5, 5.5]]]]
    """
    owner = "avg_pool2d" if owner is None else owner
    kernel, stride, padding, _ = _window_args(owner, 2, kernel_size, stride, padding, 1)
    x, batched = _batched(owner, input, 2)
    _check_output(owner, x, kernel, stride, padding, (1, 1), ceil_mode, input.shape)
    divisor_override = _divisor(owner, divisor_override)
    y = AvgPool2d.apply(x, kernel_size=kernel, stride=stride, padding=padding,
                        ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
                        divisor_override=divisor_override)
    return y if batched else y.squeeze(0)


def adaptive_avg_pool2d(input, output_size, *, owner=None):  # noqa: A002
    """Average pooling to a fixed (oh, ow) output, whatever the input's (H, W): window (a, b)
    covers rows [floor(a*H/oh), ceil((a+1)*H/oh)) and the columns alike.

    Args:
        input: (N, C, H, W) or (C, H, W).
        output_size: int or (oh, ow); None in the pair keeps that input size.
        owner: who errors name (a layer passes itself); default "adaptive_avg_pool2d".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.adaptive_avg_pool2d(rg.ones(2, 8, 7, 5), 1).shape
        (2, 8, 1, 1)
    """
    owner = "adaptive_avg_pool2d" if owner is None else owner
    x, batched = _batched(owner, input, 2)
    size = _adaptive_size(owner, output_size, x.shape[2:])
    y = AdaptiveAvgPool2d.apply(x, output_size=size)
    return y if batched else y.squeeze(0)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
               ceil_mode=False, return_indices=False, *, owner=None):
    """max_pool2d along the last axis of (N, C, L) or (C, L); indices are positions in L.

    Args: as max_pool2d, with int (or 1-tuple) kernel_size, stride, padding, dilation;
        owner's default is "max_pool1d".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.max_pool1d(rg.tensor([[[1., 3., 2., 0., 5.]]]), 2, ceil_mode=True).tolist()
        [[[3.0, 2.0, 5.0]]]
    """
    owner = "max_pool1d" if owner is None else owner
    kernel, stride, padding, dilation = _window_args(owner, 1, kernel_size, stride, padding,
                                                     dilation)
    x, batched = _batched(owner, input, 1)
    x = x.unsqueeze(2)
    _check_output(owner, x, (1,) + kernel, (1,) + stride, (0,) + padding, (1,) + dilation,
                  ceil_mode, input.shape)
    out = MaxPool2d.apply(x, kernel_size=(1,) + kernel, stride=(1,) + stride,
                          padding=(0,) + padding, dilation=(1,) + dilation,
                          ceil_mode=bool(ceil_mode), return_indices=bool(return_indices))
    out = tuple(t.squeeze(2) for t in out) if return_indices else out.squeeze(2)
    return out if batched else _unbatch(out)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True, *, owner=None):
    """avg_pool2d along the last axis of (N, C, L) or (C, L).

    Args: as avg_pool2d (without divisor_override), with int (or 1-tuple) kernel_size,
        stride, padding; owner's default is "avg_pool1d".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.avg_pool1d(rg.tensor([[[1., 3., 2., 0.]]]), 2).tolist()
        [[[2.0, 1.0]]]
    """
    owner = "avg_pool1d" if owner is None else owner
    kernel, stride, padding, _ = _window_args(owner, 1, kernel_size, stride, padding, 1)
    x, batched = _batched(owner, input, 1)
    x = x.unsqueeze(2)
    _check_output(owner, x, (1,) + kernel, (1,) + stride, (0,) + padding, (1, 1), ceil_mode,
                  input.shape)
    y = AvgPool2d.apply(x, kernel_size=(1,) + kernel, stride=(1,) + stride,
                        padding=(0,) + padding, ceil_mode=bool(ceil_mode),
                        count_include_pad=bool(count_include_pad), divisor_override=None)
    y = y.squeeze(2)
    return y if batched else y.squeeze(0)


def adaptive_avg_pool1d(input, output_size, *, owner=None):  # noqa: A002
    """adaptive_avg_pool2d along the last axis of (N, C, L) or (C, L).

    Args: as adaptive_avg_pool2d, with an int output_size; owner's default is
        "adaptive_avg_pool1d".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.adaptive_avg_pool1d(rg.tensor([[[1., 2., 3., 4., 5.]]]), 2).tolist()
        [[[2.0, 4.0]]]
    """
    owner = "adaptive_avg_pool1d" if owner is None else owner
    x, batched = _batched(owner, input, 1)
    size = _adaptive_size(owner, output_size, x.shape[2:])
    y = AdaptiveAvgPool2d.apply(x.unsqueeze(2), output_size=(1,) + size).squeeze(2)
    return y if batched else y.squeeze(0)


def adaptive_max_pool2d(input, output_size, return_indices=False, *, owner=None):  # noqa: A002
    """Max pooling to a fixed (oh, ow) output, whatever the input's (H, W): window (a, b)
    covers rows [floor(a*H/oh), ceil((a+1)*H/oh)) and the columns alike.

    Args:
        input: (N, C, H, W) or (C, H, W).
        output_size: int or (oh, ow); None in the pair keeps that input size.
        return_indices: also return the argmax of each window as a flat index h*W + w.
        owner: who errors name (a layer passes itself); default "adaptive_max_pool2d".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[[[1., 5., 2.], [3., 4., 8.]]]])
        >>> y, idx = F.adaptive_max_pool2d(x, (1, 2), return_indices=True)
        >>> y.tolist(), idx.tolist()
        ([[[[5.0, 8.0]]]], [[[[1, 5]]]])
    """
    owner = "adaptive_max_pool2d" if owner is None else owner
    x, batched = _batched(owner, input, 2)
    size = _adaptive_size(owner, output_size, x.shape[2:])
    y, indices = AdaptiveMaxPool2d.apply(x, output_size=size)
    out = (y, indices) if return_indices else y
    return out if batched else _unbatch(out)


def adaptive_max_pool1d(input, output_size, return_indices=False, *, owner=None):  # noqa: A002
    """adaptive_max_pool2d along the last axis of (N, C, L) or (C, L); indices are positions
    in L.

    Args: as adaptive_max_pool2d, with an int output_size; owner's default is
        "adaptive_max_pool1d".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.adaptive_max_pool1d(rg.tensor([[[1., 3., 2., 0., 5.]]]), 2).tolist()
        [[[3.0, 5.0]]]
    """
    owner = "adaptive_max_pool1d" if owner is None else owner
    x, batched = _batched(owner, input, 1)
    size = _adaptive_size(owner, output_size, x.shape[2:])
    y, indices = AdaptiveMaxPool2d.apply(x.unsqueeze(2), output_size=(1,) + size)
    out = (y.squeeze(2), indices.squeeze(2)) if return_indices else y.squeeze(2)
    return out if batched else _unbatch(out)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0,  # noqa: A002
                 output_size=None, *, owner=None):
    """The partial inverse of max_pool2d: every value of input goes to the position its
    index (max_pool2d's return_indices, a flat h*Wo + w) names in an output of zeros.

    Args:
        input: (N, C, H, W) or (C, H, W), the pooled values.
        indices: int64 Tensor of input's shape.
        kernel_size, stride (default: kernel_size), padding: the pooling's, int or pair.
        output_size: (Ho, Wo) (or (N, C, Ho, Wo)); default and allowed range: see Shape.
        owner: who errors name (a layer passes itself); default "max_unpool2d".

    Shape:
        - Output: (N, C, Ho, Wo), by default Ho = (H - 1)*sh - 2*ph + kh (Wo alike); a given
          output_size must lie strictly within stride of that (a pooled input of several
          sizes gives the same H).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[[[1., 5., 2., 0.], [3., 4., 8., 6.]]]])
        >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
        >>> F.max_unpool2d(y, idx, 2).tolist()
        [[[[0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 8.0, 0.0]]]]
    """
    owner = "max_unpool2d" if owner is None else owner
    x, batched = _batched(owner, input, 2)
    kernel, stride, padding, _ = _window_args(owner, 2, kernel_size, stride, padding, 1,
                                              half_kernel=False)
    size = _unpool_size(owner, x.shape[2:], kernel, stride, padding, output_size)
    idx = _unpool_indices(owner, indices, input, size)
    y = MaxUnpool2d.apply(x, idx if batched else idx.unsqueeze(0), output_size=size)
    return y if batched else y.squeeze(0)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0,  # noqa: A002
                 output_size=None, *, owner=None):
    """max_unpool2d along the last axis of (N, C, L) or (C, L); indices are positions in
    the output's L (max_pool1d's return_indices).

    Args: as max_unpool2d, with int (or 1-tuple) kernel_size, stride, padding and an
        output_size of 1 (or 3) ints; owner's default is "max_unpool1d".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> y, idx = F.max_pool1d(rg.tensor([[[1., 3., 2., 0.]]]), 2, return_indices=True)
        >>> F.max_unpool1d(y, idx, 2).tolist()
        [[[0.0, 3.0, 2.0, 0.0]]]
    """
    owner = "max_unpool1d" if owner is None else owner
    x, batched = _batched(owner, input, 1)
    kernel, stride, padding, _ = _window_args(owner, 1, kernel_size, stride, padding, 1,
                                              half_kernel=False)
    size = (1,) + _unpool_size(owner, x.shape[2:], kernel, stride, padding, output_size)
    idx = _unpool_indices(owner, indices, input, size)
    idx = (idx if batched else idx.unsqueeze(0)).unsqueeze(2)
    y = MaxUnpool2d.apply(x.unsqueeze(2), idx, output_size=size).squeeze(2)
    return y if batched else y.squeeze(0)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):  # noqa: A002
    """Power-average pooling: (sum over each (kh, kw) window of x^p)^(1/p), p = norm_type;
    max pooling of |x| for p = inf. PyTorch's composition: (a * kh*kw)^(1/p) with
    a = avg_pool2d(x^p, kernel_size, stride, ceil_mode), the gradient cut to 0 where a window
    sums to 0 (see _cut_at_zero), so its values and gradients are PyTorch's.

    Args:
        input: (N, C, H, W) or (C, H, W).
        norm_type: the power p (a number; inf or -inf for max pooling of |x| or -|x|).
        kernel_size, stride (default: kernel_size): int or (h, w) pair; no padding.
        ceil_mode: round the output size up.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.lp_pool2d(rg.tensor([[[[3., 4.], [0., 0.]]]]), 2, 2).tolist()
        [[[[5.0]]]]
    """
    kh, kw = _checks.int_tuple("lp_pool2d", "kernel_size", kernel_size, 2, 1)
    if norm_type in (float("inf"), -float("inf")):
        sign = 1 if norm_type > 0 else -1
        return sign * max_pool2d(sign * input.abs(), kernel_size, stride, 0, 1, ceil_mode,
                                 owner="lp_pool2d")
    out = avg_pool2d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode,
                     owner="lp_pool2d")
    return _cut_at_zero(out).mul(kh * kw).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):  # noqa: A002
    """lp_pool2d along the last axis of (N, C, L) or (C, L), with an int kernel_size.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.lp_pool1d(rg.tensor([[[3., 4., 1., 0.]]]), 1, 2).tolist()
        [[[7.0, 1.0]]]
    """
    (k,) = _checks.int_tuple("lp_pool1d", "kernel_size", kernel_size, 1, 1)
    if norm_type in (float("inf"), -float("inf")):
        sign = 1 if norm_type > 0 else -1
        return sign * max_pool1d(sign * input.abs(), kernel_size, stride, 0, 1, ceil_mode,
                                 owner="lp_pool1d")
    out = avg_pool1d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode,
                     owner="lp_pool1d")
    return _cut_at_zero(out).mul(k).pow(1.0 / norm_type)


def _cut_at_zero(a):
    """a, with its gradient cut to 0 where a == 0, where the slope of a^(1/p) is infinite:
    PyTorch writes it sign(a) * relu(|a|), whose value is a and whose relu drops the inf * 0
    = NaN gradient there."""
    return a.masked_fill(a == 0, 0.0)


# ---------------------------------------------------------------------------- checks
def _window_args(owner, dims, kernel_size, stride, padding, dilation, half_kernel=True):
    kernel = _checks.int_tuple(owner, "kernel_size", kernel_size, dims, 1)
    stride = kernel if stride is None or stride == () or stride == [] \
        else _checks.int_tuple(owner, "stride", stride, dims, 1)
    padding = _checks.int_tuple(owner, "padding", padding, dims, 0)
    dilation = _checks.int_tuple(owner, "dilation", dilation, dims, 1)
    if half_kernel and any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"{name_of(owner)}: padding {padding} must be at most half of "
                         f"kernel_size {kernel}")
    return kernel, stride, padding, dilation


def _batched(owner, input, dims):  # noqa: A002
    """The input as a batch (N, C, *spatial), and whether it already was one."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got "
                        f"{type(input).__name__}")
    if input.ndim not in (dims + 1, dims + 2):
        raise ValueError(f"{name_of(owner)}: expected a {dims + 1}-D (unbatched) or "
                         f"{dims + 2}-D (batched) input, got input of shape {input.shape}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{name_of(owner)}: expected a floating input, got dtype "
                        f"{input.dtype}")
    batched = input.ndim == dims + 2
    return (input if batched else input.unsqueeze(0)), batched


def _unbatch(out):
    return tuple(t.squeeze(0) for t in out) if isinstance(out, tuple) else out.squeeze(0)


def _check_output(owner, x, kernel, stride, padding, dilation, ceil_mode, shape):
    size = tuple(pool_output_size(n, k, s, p, d, bool(ceil_mode)) for n, k, s, p, d in
                 zip(x.shape[2:], kernel, stride, padding, dilation))
    if min(size) < 1:
        raise ValueError(f"{name_of(owner)}: output size {size} is too small: input of shape "
                         f"{shape}, kernel_size {kernel}, stride {stride}, padding {padding}, "
                         f"dilation {dilation}, ceil_mode={bool(ceil_mode)}")


def _divisor(owner, divisor_override):
    if divisor_override is None:
        return None
    if not _checks.is_int(divisor_override) or divisor_override == 0:
        raise ValueError(f"{name_of(owner)}: divisor_override must be a non-zero int, got "
                         f"{divisor_override!r}")
    return int(divisor_override)


def _adaptive_size(owner, output_size, in_size):
    sizes = _checks.positive_int_tuple(owner, "output_size", output_size, len(in_size),
                                       allow_none=True)
    if 0 in in_size:
        raise ValueError(f"{name_of(owner)}: input of spatial size {tuple(in_size)} has no "
                         f"element to average")
    return tuple(n if v is None else v for v, n in zip(sizes, in_size))


def _unpool_size(owner, in_size, kernel, stride, padding, output_size):
    """PyTorch's unpooling output size: (H - 1)*s - 2*p + k by default; a given size (of
    len(kernel), or len(kernel) + 2 with N and C first) must lie strictly within stride of
    that."""
    default = tuple((n - 1) * s - 2 * p + k for n, k, s, p in zip(in_size, kernel, stride,
                                                                   padding))
    if output_size is None:
        size = default
    else:
        size = tuple(output_size)
        size = size[2:] if len(size) == len(kernel) + 2 else size
        if len(size) != len(kernel) or not all(_checks.is_int(v) for v in size):
            raise ValueError(f"{name_of(owner)}: output_size must be {len(kernel)} or "
                             f"{len(kernel) + 2} ints, got {output_size!r}")
        for d, (v, s) in enumerate(zip(size, stride)):
            if not default[d] - s < v < default[d] + s:
                raise ValueError(f"{name_of(owner)}: invalid output_size {output_size!r} (dim "
                                 f"{d} must be between {default[d] - s} and {default[d] + s})")
    if min(size) < 0:
        raise ValueError(f"{name_of(owner)}: output_size {size} must be non-negative (input "
                         f"of spatial size {tuple(in_size)}, kernel_size {kernel}, stride "
                         f"{stride}, padding {padding})")
    return tuple(int(v) for v in size)


def _unpool_indices(owner, indices, input, size):  # noqa: A002
    """indices, checked: an int64 Tensor of input's shape whose values lie in the output
    plane of ``size``."""
    if not isinstance(indices, Tensor):
        raise TypeError(f"{name_of(owner)}: indices must be a Tensor, got "
                        f"{type(indices).__name__}")
    if indices._data.dtype != np.int64:
        raise RuntimeError(f"{name_of(owner)}: indices must be int64, got dtype "
                           f"{indices.dtype}")
    if indices.shape != input.shape:
        raise RuntimeError(f"{name_of(owner)}: indices of shape {tuple(indices.shape)} must "
                           f"have the input's shape {tuple(input.shape)}")
    plane = size[0] * size[1]
    values = indices._data
    if values.size and (values.min() < 0 or values.max() >= plane):
        bad = int(values.min()) if values.min() < 0 else int(values.max())
        raise RuntimeError(f"{name_of(owner)}: found an invalid max index {bad} (output "
                           f"planes are of size {size[0]}x{size[1]})")
    return indices
