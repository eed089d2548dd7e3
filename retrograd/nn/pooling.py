"""Pooling layers: MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d,
MaxUnpool1d/2d, LPPool1d/2d, thin Modules over nn.functional. They hold no parameters."""

from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "MaxUnpool1d",
           "MaxUnpool2d", "LPPool1d", "LPPool2d"]


class _MaxPoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, " \
               f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class MaxPool2d(_MaxPoolNd):
    """Max over each (kh, kw) window of every channel.

    Args:
        kernel_size: int or (kh, kw).
        stride: int or (sh, sw). Default: kernel_size.
        padding: implicit -inf padding on both sides, at most half the kernel. Default: 0.
        dilation: spacing between window cells. Default: 1.
        return_indices: also return the argmax of each window (flat h*W + w indices).
        ceil_mode: round the output size up instead of down.

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, C, Ho, Wo) or (C, Ho, Wo), with
          Ho = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1 (ceil in ceil_mode, but the last
          window must start inside the input or its left padding), Wo alike.

    Example:
        >>> import retrograd as rg
        >>> pool = rg.nn.MaxPool2d(2)
        >>> pool
        MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
        >>> pool(rg.randn(2, 3, 8, 7)).shape
        (2, 3, 4, 3)
    """

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
                            owner=self)


class MaxPool1d(_MaxPoolNd):
    """Max over each window of length kernel_size along the last axis.

    Args:
        as MaxPool2d, with int arguments.

    Shape:
        - Input: (N, C, L) or (C, L).
        - Output: (N, C, L_out) or (C, L_out), L_out = floor((L + 2*p - d*(k - 1) - 1) / s) + 1
          (ceil in ceil_mode).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.MaxPool1d(3, stride=2)(rg.randn(2, 4, 11)).shape
        (2, 4, 5)
    """

    def forward(self, x):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
                            owner=self)


class AvgPool2d(Module):
    """Mean over each (kh, kw) window of every channel.

    Args:
        kernel_size: int or (kh, kw).
        stride: int or (sh, sw). Default: kernel_size.
        padding: implicit zero padding on both sides, at most half the kernel. Default: 0.
        ceil_mode: round the output size up instead of down.
        count_include_pad: count padding cells in the divisor. Default: True.
        divisor_override: if given, the divisor of every window.

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, C, Ho, Wo) or (C, Ho, Wo), Ho = floor((H + 2*ph - kh) / sh) + 1 (ceil
          in ceil_mode), Wo alike.

    Example:
        >>> import retrograd as rg
        >>> pool = rg.nn.AvgPool2d(3, stride=2, padding=1)
        >>> pool
        AvgPool2d(kernel_size=3, stride=2, padding=1)
        >>> pool(rg.randn(2, 3, 8, 8)).shape
        (2, 3, 4, 4)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override, owner=self)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(Module):
    """Mean over each window of length kernel_size along the last axis.

    Args:
        kernel_size, stride (default kernel_size), padding, ceil_mode, count_include_pad: as
        AvgPool2d, with int arguments.

    Shape:
        - Input: (N, C, L) or (C, L).
        - Output: (N, C, L_out) or (C, L_out), L_out = floor((L + 2*p - k) / s) + 1.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.AvgPool1d(2)(rg.randn(2, 4, 11)).shape
        (2, 4, 5)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        # stored as 1-tuples, like PyTorch's AvgPool1d
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, owner=self)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, whatever the input size: window (a, b)
    covers rows [floor(a*H/oh), ceil((a+1)*H/oh)) and columns [floor(b*W/ow), ceil((b+1)*W/ow)).

    Args:
        output_size: int or (oh, ow); None in the pair keeps that input size.

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, C, oh, ow) or (C, oh, ow).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.AdaptiveAvgPool2d((1, 1))(rg.randn(2, 512, 7, 7)).shape
        (2, 512, 1, 1)
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size, owner=self)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(Module):
    """Average pooling to a fixed output length, whatever the input length.

    Args:
        output_size: int, the output length.

    Shape:
        - Input: (N, C, L) or (C, L).
        - Output: (N, C, output_size) or (C, output_size).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.AdaptiveAvgPool1d(4)(rg.randn(2, 3, 10)).shape
        (2, 3, 4)
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool1d(x, self.output_size, owner=self)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class _AdaptiveMaxPoolNd(Module):
    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max pooling to a fixed output size, whatever the input size: window (a, b) covers
    rows [floor(a*H/oh), ceil((a+1)*H/oh)) and columns [floor(b*W/ow), ceil((b+1)*W/ow)).

    Args:
        output_size: int or (oh, ow); None in the pair keeps that input size.
        return_indices: also return the argmax of each window (flat h*W + w indices).

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, C, oh, ow) or (C, oh, ow).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.AdaptiveMaxPool2d((5, 7))(rg.randn(1, 64, 8, 9)).shape
        (1, 64, 5, 7)
    """

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices, owner=self)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max pooling to a fixed output length, whatever the input length.

    Args:
        output_size: int, the output length.
        return_indices: also return the argmax of each window (positions in L).

    Shape:
        - Input: (N, C, L) or (C, L).
        - Output: (N, C, output_size) or (C, output_size).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.AdaptiveMaxPool1d(5)(rg.randn(1, 64, 8)).shape
        (1, 64, 5)
    """

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices, owner=self)


class MaxUnpool2d(Module):
    """The partial inverse of MaxPool2d: each value goes back to the position its index
    (MaxPool2d's return_indices) names, every other output cell is 0.

    Args:
        kernel_size: int or (kh, kw), the pooling's.
        stride: int or (sh, sw). Default: kernel_size.
        padding: the pooling's padding. Default: 0.

    Shape:
        - Input: (N, C, H, W) or (C, H, W), and indices of the same shape.
        - Output: (N, C, Ho, Wo) or (C, Ho, Wo), Ho = (H - 1)*sh - 2*ph + kh (Wo alike), or
          the forward's output_size (within stride of that).

    Example:
        >>> import retrograd as rg
        >>> pool, unpool = rg.nn.MaxPool2d(2, return_indices=True), rg.nn.MaxUnpool2d(2)
        >>> unpool
        MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))
        >>> x = rg.randn(1, 1, 5, 5)
        >>> y, indices = pool(x)
        >>> unpool(y, indices, output_size=x.size()).shape
        (1, 1, 5, 5)
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)

    def forward(self, input, indices, output_size=None):  # noqa: A002
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size, owner=self)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(MaxUnpool2d):
    """The partial inverse of MaxPool1d (see MaxUnpool2d), along the last axis.

    Args:
        kernel_size, stride (default kernel_size), padding: the pooling's, ints.

    Shape:
        - Input: (N, C, L) or (C, L), and indices of the same shape.
        - Output: (N, C, L_out) or (C, L_out), L_out = (L - 1)*s - 2*p + k, or the
          forward's output_size.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.MaxUnpool1d(2)
        MaxUnpool1d(kernel_size=(2,), stride=(2,), padding=(0,))
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        Module.__init__(self)
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)

    def forward(self, input, indices, output_size=None):  # noqa: A002
        return F.max_unpool1d(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size, owner=self)


class _LPPoolNd(Module):
    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, kernel_size
        self.stride, self.ceil_mode = stride, ceil_mode

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool2d(_LPPoolNd):
    """Power-average pooling: (sum over each window of x^p)^(1/p), p = norm_type (p = 1 is
    sum pooling, p = inf max pooling of |x|). A window whose sum is 0 gets gradient 0.

    Args:
        norm_type: the power p.
        kernel_size: int or (kh, kw).
        stride: int or (sh, sw). Default: kernel_size.
        ceil_mode: round the output size up instead of down.

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, C, Ho, Wo) or (C, Ho, Wo), Ho = floor((H - kh) / sh) + 1, Wo alike.

    Example:
        >>> import retrograd as rg
        >>> pool = rg.nn.LPPool2d(2, 3, stride=2)
        >>> pool
        LPPool2d(norm_type=2, kernel_size=3, stride=2, ceil_mode=False)
        >>> pool(rg.randn(2, 4, 9, 7)).shape
        (2, 4, 4, 3)
    """

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.lp_pool2d(input, float(self.norm_type), self.kernel_size, self.stride,
                           self.ceil_mode)


class LPPool1d(_LPPoolNd):
    """Power-average pooling along the last axis (see LPPool2d).

    Args:
        norm_type, kernel_size, stride (default kernel_size), ceil_mode: as LPPool2d, ints.

    Shape:
        - Input: (N, C, L) or (C, L).
        - Output: (N, C, L_out) or (C, L_out), L_out = floor((L - k) / s) + 1.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.LPPool1d(1.5, 3)(rg.randn(2, 4, 10)).shape
        (2, 4, 3)
    """

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.lp_pool1d(input, float(self.norm_type), self.kernel_size, self.stride,
                           self.ceil_mode)


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _single(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)
