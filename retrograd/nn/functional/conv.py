"""conv1d and conv2d: argument checks and PyTorch's padding rules around ops.conv."""

from retrograd.nn.functional._args import int_tuple
from retrograd.ops.conv import Conv1d, Conv2d, conv_output_size
from retrograd.tensor import Tensor

__all__ = ["conv1d", "conv2d"]


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-D convolution (cross-correlation, as in PyTorch) of input with weight, plus bias.

    Args:
        input: (N, C, H, W), or (C, H, W) unbatched.
        weight: (O, C/groups, kh, kw).
        bias: (O,) or None.
        stride, dilation: int or (h, w) pair, >= 1.
        padding: int or (h, w) pair (zeros on both sides), or 'valid' (no padding), or
            'same' (output size = input size; only with stride 1; when dilation*(k-1) is
            odd the extra row/column goes to the bottom/right, as in PyTorch).
        groups: input and output channels are split into this many groups, each convolved
            on its own; groups = C is a depthwise convolution.

    Output: (N, O, Ho, Wo) with Ho = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1, Wo alike.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[[[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]]]])
        >>> F.conv2d(x, rg.tensor([[[[1., 0.], [0., 1.]]]])).tolist()
        [[[[6.0, 8.0], [12.0, 14.0]]]]
    """
    return _conv(Conv2d, "conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """1-D convolution (cross-correlation) of input with weight, plus bias.

    Args:
        input: (N, C, L), or (C, L) unbatched.
        weight: (O, C/groups, k).
        bias: (O,) or None.
        stride, dilation: int (or a 1-tuple), >= 1.
        padding: int (or a 1-tuple), 'valid' or 'same' (as conv2d).
        groups: as conv2d.

    Output: (N, O, L_out) with L_out = floor((L + 2*p - d*(k-1) - 1) / s) + 1.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.conv1d(rg.tensor([[[1., 2., 3., 4.]]]), rg.tensor([[[1., -1.]]])).tolist()
        [[[-1.0, -1.0, -1.0]]]
    """
    return _conv(Conv1d, "conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def _conv(op, name, dims, input, weight, bias, stride, padding, dilation, groups):  # noqa: A002
    _check_tensors(name, dims, input, weight, bias)
    stride = int_tuple(name, "stride", stride, dims, minimum=1)
    dilation = int_tuple(name, "dilation", dilation, dims, minimum=1)
    groups = _groups(name, groups, weight)
    kernel = weight.shape[2:]
    pads = _padding(name, padding, kernel, stride, dilation, dims)
    batched = input.ndim == dims + 2
    x = input if batched else input.unsqueeze(0)
    _check_channels(name, x, weight, groups, input.shape)
    _check_fits(name, x.shape[2:], kernel, pads, dilation, input.shape)
    y = op.apply(x, weight, bias, stride=stride, padding=pads, dilation=dilation, groups=groups)
    return y if batched else y.squeeze(0)


def _padding(name, padding, kernel, stride, dilation, dims):
    """((before, after), ...) per spatial axis from PyTorch's padding argument."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * dims
        if padding != "same":
            raise ValueError(f"{name}: padding must be an int, a tuple of {dims} ints, 'valid' "
                             f"or 'same', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{name}: padding='same' is not supported for strided "
                             f"convolutions (stride {stride})")
        # total padding d*(k-1); when it is odd the extra one goes after, as in PyTorch
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    pads = int_tuple(name, "padding", padding, dims, minimum=0)
    return tuple((p, p) for p in pads)


def _groups(name, groups, weight):
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    if weight.shape[0] % groups != 0:
        raise ValueError(f"{name}: groups={groups} must divide the number of output channels "
                         f"(weight shape {weight.shape})")
    return groups


def _check_tensors(name, dims, input, weight, bias):  # noqa: A002
    for what, t in (("input", input), ("weight", weight), ("bias", bias)):
        if not isinstance(t, Tensor) and not (what == "bias" and t is None):
            raise TypeError(f"{name}: {what} must be a Tensor, got {type(t).__name__}")
    if weight.ndim != dims + 2:
        raise ValueError(f"{name}: weight must be {dims + 2}-D (out_channels, "
                         f"in_channels/groups, {'kh, kw' if dims == 2 else 'k'}), got shape "
                         f"{weight.shape}")
    if 0 in weight.shape[2:]:
        raise ValueError(f"{name}: weight has an empty kernel (shape {weight.shape})")
    if input.ndim not in (dims + 1, dims + 2):
        raise ValueError(f"{name}: expected a {dims + 1}-D (unbatched) or {dims + 2}-D "
                         f"(batched) input, got input of shape {input.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{name}: bias of shape {bias.shape} does not match weight of shape "
                         f"{weight.shape}: expected ({weight.shape[0]},)")
    if not input.dtype.is_floating_point or input.dtype != weight.dtype \
            or (bias is not None and bias.dtype != weight.dtype):
        bias_dtype = f", bias dtype {bias.dtype}" if bias is not None else ""
        raise TypeError(f"{name}: expected floating input, weight (and bias) of one dtype, got "
                        f"input dtype {input.dtype}, weight dtype {weight.dtype}{bias_dtype}")


def _check_channels(name, x, weight, groups, shape):
    expected = weight.shape[1] * groups
    if x.shape[1] != expected:
        raise ValueError(f"{name}: expected input with {expected} channels (weight shape "
                         f"{weight.shape}, groups={groups}), got input of shape {shape}")


def _check_fits(name, size, kernel, pads, dilation, shape):
    padded = tuple(s + sum(p) for s, p in zip(size, pads))
    for n, k, d, p in zip(size, kernel, dilation, pads):
        if conv_output_size(n, k, 1, sum(p), d) < 1:
            dilated = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
            raise ValueError(f"{name}: kernel size {tuple(kernel)} (dilated: {dilated}) is "
                             f"larger than the padded input {padded} (input shape {shape}, "
                             f"padding {pads})")
