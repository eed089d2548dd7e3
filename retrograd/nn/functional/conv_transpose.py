"""conv_transpose1d and conv_transpose2d: argument checks and PyTorch's rules around
ops.conv_transpose. The weight is (in_channels, out_channels/groups, *kernel), as PyTorch's.
"""

from retrograd import _checks
from retrograd._checks import name_of
from retrograd.nn.functional.conv import check_conv_tensors
from retrograd.ops.conv_transpose import (ConvTranspose1d, ConvTranspose2d,
                                          conv_transpose_output_size)

__all__ = ["conv_transpose1d", "conv_transpose2d", "output_padding_for"]


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0,  # noqa: A002
                     output_padding=0, groups=1, dilation=1, *, owner=None):
    """2-D transposed convolution (the gradient of conv2d with respect to its input, as a
    layer): each input pixel scatters the kernel, scaled by its value, onto the output.

    Args:
        input: (N, Ci, H, W), or (Ci, H, W) unbatched.
        weight: (Ci, Co/groups, kh, kw).
        bias: (Co,) or None.
        stride, dilation: int or (h, w) pair, >= 1.
        padding: int or (h, w) pair: rows/columns cut from each side of the full output
            (dilation*(k-1) - padding of zeros around the input, in conv terms).
        output_padding: int or (h, w) pair, added to one side of the output (the bottom and
            right) to pick among the sizes that stride makes ambiguous; each must be smaller
            than its stride or its dilation.
        groups: as conv2d (note the argument order: groups before dilation, as PyTorch).
        owner: who errors name (a layer passes itself); default "conv_transpose2d".

    Output: (N, Co, Ho, Wo), Ho = (H - 1)*sh - 2*ph + dh*(kh - 1) + oph + 1, Wo alike.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[[[1., 2.], [3., 4.]]]])
        >>> F.conv_transpose2d(x, rg.ones(1, 1, 2, 2), stride=2).tolist()[0][0]
        [[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0], [3.0, 3.0, 4.0, 4.0]]
    """
    owner = "conv_transpose2d" if owner is None else owner
    return _conv_transpose(ConvTranspose2d, owner, 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0,  # noqa: A002
                     output_padding=0, groups=1, dilation=1, *, owner=None):
    """1-D transposed convolution.

    Args:
        input: (N, Ci, L), or (Ci, L) unbatched.
        weight: (Ci, Co/groups, k).
        bias: (Co,) or None.
        stride, padding, output_padding, dilation: ints (or 1-tuples), as conv_transpose2d.
        groups: as conv_transpose2d.
        owner: who errors name (a layer passes itself); default "conv_transpose1d".

    Output: (N, Co, L_out), L_out = (L - 1)*s - 2*p + d*(k - 1) + op + 1.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.conv_transpose1d(rg.tensor([[[1., 2.]]]), rg.tensor([[[1., 10.]]])).tolist()
        [[[1.0, 12.0, 20.0]]]
    """
    owner = "conv_transpose1d" if owner is None else owner
    return _conv_transpose(ConvTranspose1d, owner, 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def _conv_transpose(op, owner, dims, input, weight, bias, stride, padding,  # noqa: A002
                    output_padding, groups, dilation):
    check_conv_tensors(owner, dims, input, weight, bias, "in_channels, out_channels/groups")
    stride = _checks.int_tuple(owner, "stride", stride, dims, minimum=1)
    dilation = _checks.int_tuple(owner, "dilation", dilation, dims, minimum=1)
    padding = _checks.int_tuple(owner, "padding", padding, dims, minimum=0)
    output_padding = _checks.int_tuple(owner, "output_padding", output_padding, dims,
                                       minimum=0)
    groups = _checks.positive_int(owner, "groups", groups)
    batched = input.ndim == dims + 2
    x = input if batched else input.unsqueeze(0)
    _check_channels(owner, x, weight, bias, groups, input.shape)
    _check_output_padding(owner, output_padding, stride, dilation)
    _check_output_size(owner, x.shape[2:], weight.shape[2:], stride, padding, output_padding,
                       dilation)
    y = op.apply(x, weight, bias, stride=stride, padding=padding,
                 output_padding=output_padding, dilation=dilation, groups=groups)
    return y if batched else y.squeeze(0)


def output_padding_for(owner, input, output_size, stride, padding, kernel, dilation,  # noqa: A002
                       dims):
    """The output_padding that makes a transposed convolution's output ``output_size``
    (spatial sizes, or with the batch and channel sizes in front), PyTorch's rule: each
    size must lie in [min, min + stride - 1], min the size with output_padding 0.

    Example:
        >>> import retrograd as rg
        >>> output_padding_for("ConvTranspose2d", rg.ones(1, 1, 4, 4), (8, 7), (2, 2),
        ...                    (1, 1), (3, 3), (1, 1), 2)
        (1, 0)
    """
    leading = 2 if input.ndim == dims + 2 else 1
    sizes = tuple(output_size)
    if len(sizes) == leading + dims:
        sizes = sizes[leading:]
    if len(sizes) != dims or not all(_checks.is_int(s) for s in sizes):
        raise ValueError(f"{name_of(owner)}: for {input.ndim}D input, output_size must have "
                         f"{dims} or {leading + dims} ints (got {tuple(output_size)})")
    spatial = tuple(input.shape[leading:])
    smallest = tuple(conv_transpose_output_size(n, k, s, p, 0, d) for n, k, s, p, d in
                     zip(spatial, kernel, stride, padding, dilation))
    largest = tuple(m + s - 1 for m, s in zip(smallest, stride))
    if any(not lo <= n <= hi for n, lo, hi in zip(sizes, smallest, largest)):
        raise ValueError(f"{name_of(owner)}: requested an output size of {sizes}, but valid "
                         f"sizes range from {smallest} to {largest} (for an input of "
                         f"{spatial})")
    return tuple(n - lo for n, lo in zip(sizes, smallest))


def _check_channels(owner, x, weight, bias, groups, shape):
    if weight.shape[0] % groups != 0:
        raise RuntimeError(f"{name_of(owner)}: given groups={groups}, expected weight to be "
                           f"divisible by {groups} at dimension 0, but got weight of size "
                           f"{weight.shape}")
    if x.shape[1] != weight.shape[0]:
        raise RuntimeError(f"{name_of(owner)}: weight of size {weight.shape} (in_channels "
                           f"first) expects input with {weight.shape[0]} channels, but got "
                           f"input of shape {shape}")
    out_channels = weight.shape[1] * groups
    if bias is not None and bias.shape != (out_channels,):
        raise RuntimeError(f"{name_of(owner)}: bias of shape {bias.shape} does not match "
                           f"weight of shape {weight.shape} and groups={groups}: expected "
                           f"({out_channels},)")


def _check_output_padding(owner, output_padding, stride, dilation):
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        raise RuntimeError(f"{name_of(owner)}: output padding must be smaller than either "
                         f"stride or dilation, but got output_padding {output_padding}, "
                         f"stride {stride}, dilation {dilation}")


def _check_output_size(owner, size, kernel, stride, padding, output_padding, dilation):
    out = tuple(conv_transpose_output_size(n, k, s, p, op, d) for n, k, s, p, op, d in
                zip(size, kernel, stride, padding, output_padding, dilation))
    if any(m < 1 for m in out):
        raise RuntimeError(f"{name_of(owner)}: given input size per channel {tuple(size)}, "
                           f"the calculated output size per channel {out} is too small "
                           f"(padding {padding}, kernel {tuple(kernel)})")
