"""Convolution layers: Conv1d and Conv2d, thin Modules over nn.functional.conv1d/conv2d."""

import math

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.creation import empty
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.functional.conv import check_padding
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter

__all__ = ["Conv1d", "Conv2d"]


class _ConvNd(Module):
    """Shared by Conv1d and Conv2d: argument checks, parameters, init, repr. The input is
    checked by F.conv1d / F.conv2d, whose errors name the layer (owner=self)."""

    _dims = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__()
        name = type(self).__name__
        in_channels, out_channels, groups = _check_sizes(name, in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f"{name}: padding_mode {padding_mode!r} is not supported; "
                             f"retrograd pads with zeros only (padding_mode='zeros')")
        _checks.cpu_device(name, device)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _checks.int_tuple(name, "kernel_size", kernel_size, self._dims, 1)
        self.stride = _checks.int_tuple(name, "stride", stride, self._dims, 1)
        self.dilation = _checks.int_tuple(name, "dilation", dilation, self._dims, 1)
        self.padding = check_padding(name, padding, self.stride, self._dims)
        self.padding_mode = padding_mode
        dtype = dtype or _dt.default_float
        self.weight = Parameter(empty(out_channels, in_channels // groups, *self.kernel_size,
                                      dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform_
        with a = sqrt(5)), bias ~ the same, fan_in = in_channels/groups * prod(kernel_size)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0,) * self._dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._dims:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """Applies a 2-D convolution (cross-correlation) over a batch of images:
    y[n, o] = bias[o] + sum over c in o's group of weight[o, c] (*) x[n, c].

    Args:
        in_channels: channels C of the input.
        out_channels: channels O produced (the number of filters).
        kernel_size: int or (kh, kw).
        stride: int or (sh, sw). Default: 1.
        padding: int, (ph, pw), 'valid' or 'same' (stride 1 only). Default: 0.
        dilation: spacing between kernel cells, int or (dh, dw). Default: 1.
        groups: split channels into groups convolved separately (groups = C is a depthwise
            convolution). Default: 1.
        bias: whether to learn an additive bias. Default: True.
        padding_mode: 'zeros' (the only mode supported).
        device: None or "cpu". dtype: the parameters' dtype (default float32).

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, O, Ho, Wo) or (O, Ho, Wo), with
          Ho = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1 and
          Wo = floor((W + 2*pw - dw*(kw - 1) - 1) / sw) + 1.

    Attributes:
        weight: (O, C/groups, kh, kw), from U(-sqrt(k), sqrt(k)), k = groups / (C*kh*kw).
        bias: (O,), from the same distribution.

    Example:
        >>> import retrograd as rg
        >>> conv = rg.nn.Conv2d(3, 8, 3, padding=1)
        >>> conv
        Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
        >>> conv(rg.randn(2, 3, 16, 16)).shape
        (2, 8, 16, 16)
    """

    _dims = 2

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups, owner=self)


class Conv1d(_ConvNd):
    """Applies a 1-D convolution (cross-correlation) over a batch of sequences:
    y[n, o] = bias[o] + sum over c in o's group of weight[o, c] (*) x[n, c].

    Args:
        as Conv2d, with int (or 1-tuple) kernel_size, stride, padding, dilation.

    Shape:
        - Input: (N, C, L) or (C, L).
        - Output: (N, O, L_out) or (O, L_out), L_out = floor((L + 2*p - d*(k - 1) - 1) / s) + 1.

    Attributes:
        weight: (O, C/groups, k), from U(-sqrt(q), sqrt(q)), q = groups / (C*k).
        bias: (O,), from the same distribution.

    Example:
        >>> import retrograd as rg
        >>> conv = rg.nn.Conv1d(4, 6, 5, stride=2)
        >>> conv(rg.randn(3, 4, 21)).shape
        (3, 6, 9)
    """

    _dims = 1

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups, owner=self)


def _check_sizes(name, in_channels, out_channels, groups):
    """(in_channels, out_channels, groups) as ints, the channels divisible by groups."""
    in_channels = _checks.int_at_least(name, "in_channels", in_channels, 0)
    out_channels = _checks.int_at_least(name, "out_channels", out_channels, 0)
    groups = _checks.int_at_least(name, "groups", groups, 1)
    if in_channels % groups != 0:
        raise ValueError(f"{name}: in_channels={in_channels} must be divisible by "
                         f"groups={groups}")
    if out_channels % groups != 0:
        raise ValueError(f"{name}: out_channels={out_channels} must be divisible by "
                         f"groups={groups}")
    return in_channels, out_channels, groups
