"""Convolution layers: Conv1d and Conv2d, thin Modules over nn.functional.conv1d/conv2d, and
ConvTranspose1d and ConvTranspose2d over nn.functional.conv_transpose1d/2d."""

import math

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.creation import empty
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.functional.conv import check_padding
from retrograd.nn.functional.conv_transpose import output_padding_for
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]


class _ConvNd(Module):
    """Shared by Conv1d, Conv2d and the transposed convolutions: argument checks,
    parameters, init, repr. The input is checked by F.conv1d / F.conv2d (...), whose errors
    name the layer (owner=self). A transposed convolution's weight is (in, out/groups, *k)."""

    _dims = 0
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__()
        name = type(self).__name__
        in_channels, out_channels, groups = _check_sizes(name, in_channels, out_channels, groups)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, but got "
                             f"padding_mode={padding_mode!r}")
        _checks.cpu_device(name, device)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _checks.int_tuple(name, "kernel_size", kernel_size, self._dims, 1)
        self.stride = _checks.int_tuple(name, "stride", stride, self._dims, 1)
        self.dilation = _checks.int_tuple(name, "dilation", dilation, self._dims, 1)
        self.padding = check_padding(name, padding, self.stride, self._dims)
        self.padding_mode = padding_mode
        self._reversed_padding_repeated_twice = _pad_tuple(self.padding, self.kernel_size,
                                                           self.dilation)
        dtype = dtype or _dt.default_float
        channels = ((in_channels, out_channels // groups) if self.transposed
                    else (out_channels, in_channels // groups))
        self.weight = Parameter(empty(*channels, *self.kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform_
        with a = sqrt(5)), bias ~ the same, fan_in = weight.shape[1] * prod(kernel_size):
        in_channels/groups, or out_channels/groups for a transposed convolution (PyTorch
        computes it from the weight's shape alike)."""
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
        if self.transposed and self.output_padding != (0,) * self._dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _padded(self, input):  # noqa: A002
        """(input, padding) for F.conv: with a padding_mode other than zeros, the input
        padded by F.pad in that mode and padding 0, as PyTorch."""
        if self.padding_mode == "zeros":
            return input, self.padding
        padded = F.pad(input, self._reversed_padding_repeated_twice, self.padding_mode,
                       owner=self)
        return padded, 0


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
        padding_mode: 'zeros', 'reflect', 'replicate' or 'circular': what the padding
            holds (the other modes pad with F.pad, then convolve without padding).
            Default: 'zeros'.
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
        x, padding = self._padded(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
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
        x, padding = self._padded(x)
        return F.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups, owner=self)


class _ConvTransposeNd(_ConvNd):
    """Shared by ConvTranspose1d and ConvTranspose2d: output_padding, and forward's
    output_size (which picks output_padding)."""

    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        name = type(self).__name__
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding={padding!r} is not supported for transposed "
                             f"convolutions; give an int or a tuple of ints")
        if padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding mode is supported, got '
                             f'{padding_mode!r}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        self.output_padding = _checks.int_tuple(name, "output_padding", output_padding,
                                                self._dims, 0)

    def _output_padding(self, input, output_size):  # noqa: A002
        if output_size is None:
            return self.output_padding
        return output_padding_for(self, input, output_size, self.stride, self.padding,
                                  self.kernel_size, self.dilation, self._dims)


class ConvTranspose2d(_ConvTransposeNd):
    """Applies a 2-D transposed convolution over a batch of images: the gradient of a
    Conv2d with respect to its input, used as a layer (each input pixel scatters the
    kernel, scaled by its value, onto a larger output; "deconvolution").

    Args:
        in_channels: channels Ci of the input.
        out_channels: channels Co produced.
        kernel_size: int or (kh, kw).
        stride: int or (sh, sw). Default: 1.
        padding: int or (ph, pw), cut from each side of the full output. Default: 0.
        output_padding: int or (oph, opw), added to the bottom/right of the output; smaller
            than stride or dilation. Default: 0.
        groups: split channels into groups. Default: 1.
        bias: whether to learn an additive bias. Default: True.
        dilation: spacing between kernel cells, int or (dh, dw). Default: 1.
        padding_mode: 'zeros' (the only mode, as PyTorch's transposed convolutions).
        device: None or "cpu". dtype: the parameters' dtype (default float32).

    Shape:
        - Input: (N, Ci, H, W) or (Ci, H, W).
        - Output: (N, Co, Ho, Wo) or (Co, Ho, Wo), with
          Ho = (H - 1)*sh - 2*ph + dh*(kh - 1) + oph + 1 and Wo alike; forward's
          ``output_size`` picks output_padding to reach a given size instead.

    Attributes:
        weight: (Ci, Co/groups, kh, kw), from U(-sqrt(k), sqrt(k)), k = groups / (Co*kh*kw).
        bias: (Co,), from the same distribution.

    Example:
        >>> import retrograd as rg
        >>> up = rg.nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        >>> up      # doctest: +ELLIPSIS
        ConvTranspose2d(8, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_pad...
        >>> up(rg.randn(2, 8, 5, 5)).shape
        (2, 4, 10, 10)
        >>> up(rg.randn(2, 8, 5, 5), output_size=(9, 10)).shape
        (2, 4, 9, 10)
    """

    _dims = 2

    def forward(self, input, output_size=None):  # noqa: A002 - PyTorch's argument name
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation, owner=self)


class ConvTranspose1d(_ConvTransposeNd):
    """Applies a 1-D transposed convolution over a batch of sequences (see
    ConvTranspose2d).

    Args:
        as ConvTranspose2d, with int (or 1-tuple) kernel_size, stride, padding,
        output_padding, dilation.

    Shape:
        - Input: (N, Ci, L) or (Ci, L).
        - Output: (N, Co, L_out) or (Co, L_out), L_out = (L - 1)*s - 2*p + d*(k - 1) + op + 1.

    Attributes:
        weight: (Ci, Co/groups, k), from U(-sqrt(q), sqrt(q)), q = groups / (Co*k).
        bias: (Co,), from the same distribution.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ConvTranspose1d(4, 2, 4, stride=2, padding=1)(rg.randn(3, 4, 10)).shape
        (3, 2, 20)
    """

    _dims = 1

    def forward(self, input, output_size=None):  # noqa: A002
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation, owner=self)


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pad_tuple(padding, kernel_size, dilation):
    """PyTorch's _reversed_padding_repeated_twice: F.pad's tuple (last axis first) for the
    padding (for 'same', d*(k-1) split with the extra one after)."""
    if padding == "valid":
        return (0, 0) * len(kernel_size)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        pairs = [(t // 2, t - t // 2) for t in totals]
    else:
        pairs = [(p, p) for p in padding]
    return tuple(v for pair in reversed(pairs) for v in pair)


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
