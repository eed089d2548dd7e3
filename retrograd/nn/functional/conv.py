"""conv1d and conv2d: argument checks and PyTorch's padding rules around ops.conv."""

from retrograd import _checks
from retrograd._checks import name_of
from retrograd.ops.conv import Conv1d, Conv2d, conv_output_size
from retrograd.tensor import Tensor

__all__ = ["conv1d", "conv2d", "check_padding"]


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,  # noqa: A002
           owner=None):
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
        owner: who errors name (a layer passes itself); default "conv2d".

    Output: (N, O, Ho, Wo) with Ho = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1, Wo alike.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[[[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]]]])
        >>> F.conv2d(x, rg.tensor([[[[1., 0.], [0., 1.]]]])).tolist()
        [[[[6.0, 8.0], [12.0, 14.0]]]]
    """
    owner = "conv2d" if owner is None else owner
    return _conv(Conv2d, owner, 2, input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,  # noqa: A002
           owner=None):
    """1-D convolution (cross-correlation) of input with weight, plus bias.

    Args:
        input: (N, C, L), or (C, L) unbatched.
        weight: (O, C/groups, k).
        bias: (O,) or None.
        stride, dilation: int (or a 1-tuple), >= 1.
        padding: int (or a 1-tuple), 'valid' or 'same' (as conv2d).
        groups: as conv2d.
        owner: who errors name (a layer passes itself); default "conv1d".

    Output: (N, O, L_out) with L_out = floor((L + 2*p - d*(k-1) - 1) / s) + 1.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.conv1d(rg.tensor([[[1., 2., 3., 4.]]]), rg.tensor([[[1., -1.]]])).tolist()
        [[[-1.0, -1.0, -1.0]]]
    """
    owner = "conv1d" if owner is None else owner
    return _conv(Conv1d, owner, 1, input, weight, bias, stride, padding, dilation, groups)


def _conv(op, owner, dims, input, weight, bias, stride, padding, dilation, groups):  # noqa: A002
    _check_tensors(owner, dims, input, weight, bias)
    stride = _checks.int_tuple(owner, "stride", stride, dims, minimum=1)
    dilation = _checks.int_tuple(owner, "dilation", dilation, dims, minimum=1)
    groups = _groups(owner, groups, weight)
    kernel = weight.shape[2:]
    pads = _pads(check_padding(owner, padding, stride, dims), kernel, dilation)
    batched = input.ndim == dims + 2
    x = input if batched else input.unsqueeze(0)
    _check_channels(owner, x, weight, groups, input.shape)
    _check_fits(owner, x.shape[2:], kernel, pads, dilation, input.shape)
    y = op.apply(x, weight, bias, stride=stride, padding=pads, dilation=dilation, groups=groups)
    return y if batched else y.squeeze(0)


def check_padding(owner, padding, stride, dims):
    """PyTorch's padding argument, checked: 'valid', 'same' (stride 1 only), or an int or a
    tuple of ``dims`` ints >= 0, returned as a tuple (the conv layers check theirs with it
    at construction).

    Example:
        >>> check_padding("Conv2d", 1, (1, 1), 2)
        (1, 1)
    """
    if not isinstance(padding, str):
        return _checks.int_tuple(owner, "padding", padding, dims, minimum=0)
    _checks.one_of(owner, "padding", padding, ("valid", "same"))
    if padding == "same" and any(s != 1 for s in stride):
        raise ValueError(f"{name_of(owner)}: padding='same' is not supported for strided "
                         f"convolutions (stride {stride})")
    return padding


def _pads(padding, kernel, dilation):
    """((before, after), ...) per spatial axis from a checked padding argument."""
    if padding == "valid":
        return ((0, 0),) * len(kernel)
    if padding == "same":
        # total padding d*(k-1); when it is odd the extra one goes after, as in PyTorch
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in padding)


def _groups(owner, groups, weight):
    groups = _checks.positive_int(owner, "groups", groups)
    if weight.shape[0] % groups != 0:
        raise ValueError(f"{name_of(owner)}: groups={groups} must divide the number of output "
                         f"channels (weight shape {weight.shape})")
    return groups


def _check_tensors(owner, dims, input, weight, bias):  # noqa: A002
    check_conv_tensors(owner, dims, input, weight, bias, "out_channels, in_channels/groups")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{name_of(owner)}: bias of shape {bias.shape} does not match weight "
                         f"of shape {weight.shape}: expected ({weight.shape[0]},)")


def check_conv_tensors(owner, dims, input, weight, bias, weight_layout):  # noqa: A002
    """The checks a convolution and a transposed convolution share: tensors, a
    (dims + 2)-D weight laid out as ``weight_layout`` + kernel with no empty kernel dim, a
    (dims + 1)- or (dims + 2)-D input, and one floating dtype for all."""
    for what, t in (("input", input), ("weight", weight), ("bias", bias)):
        if not isinstance(t, Tensor) and not (what == "bias" and t is None):
            raise TypeError(f"{name_of(owner)}: {what} must be a Tensor, got "
                            f"{type(t).__name__}")
    if weight.ndim != dims + 2:
        raise ValueError(f"{name_of(owner)}: weight must be {dims + 2}-D ({weight_layout}, "
                         f"{'kh, kw' if dims == 2 else 'k'}), got shape {weight.shape}")
    if 0 in weight.shape[2:]:
        raise ValueError(f"{name_of(owner)}: weight has an empty kernel (shape "
                         f"{weight.shape})")
    if input.ndim not in (dims + 1, dims + 2):
        raise ValueError(f"{name_of(owner)}: expected a {dims + 1}-D (unbatched) or "
                         f"{dims + 2}-D (batched) input, got input of shape {input.shape}")
    if not input.dtype.is_floating_point or _checks.mixed_dtypes(input, weight, bias):
        bias_dtype = f", bias dtype {bias.dtype}" if bias is not None else ""
        raise TypeError(f"{name_of(owner)}: expected floating input, weight (and bias) of one "
                        f"dtype, got input dtype {input.dtype}, weight dtype "
                        f"{weight.dtype}{bias_dtype} (input of shape {input.shape}); convert "
                        f"one of them")


def _check_channels(owner, x, weight, groups, shape):
    expected = weight.shape[1] * groups
    if x.shape[1] != expected:
        raise ValueError(f"{name_of(owner)}: expected input with {expected} channels (weight "
                         f"shape {weight.shape}, groups={groups}), got input of shape {shape}")


def _check_fits(owner, size, kernel, pads, dilation, shape):
    padded = tuple(s + sum(p) for s, p in zip(size, pads))
    for n, k, d, p in zip(size, kernel, dilation, pads):
        if conv_output_size(n, k, 1, sum(p), d) < 1:
            dilated = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
            raise ValueError(f"{name_of(owner)}: kernel size {tuple(kernel)} (dilated: "
                             f"{dilated}) is larger than the padded input {padded} (input "
                             f"shape {shape}, padding {pads})")
