"""unfold and fold: sliding blocks to columns (im2col) and back (col2im), as PyTorch's
``F.unfold`` and ``F.fold``, around ops.fold."""

from retrograd import _checks
from retrograd._checks import name_of
from retrograd.ops.fold import Col2im, Im2col, blocks_shape
from retrograd.tensor import Tensor

__all__ = ["unfold", "fold"]


def unfold(input, kernel_size, dilation=1, padding=0, stride=1, *, owner=None):  # noqa: A002
    """The sliding (kh, kw) blocks of every channel, as columns: output[n, (c, i, j), l] =
    input_pad[n, c, ho*sh + i*dh, wo*sw + j*dw] for block l = ho*Wo + wo (im2col).

    Args:
        input: (N, C, H, W), or (C, H, W) unbatched.
        kernel_size, dilation, padding (zeros on both sides), stride: int or (h, w) pair.
        owner: who errors name (a layer passes itself); default "unfold".

    Shape:
        - Output: (N, C*kh*kw, L) (or (C*kh*kw, L)), L = Ho*Wo, with
          Ho = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1, Wo alike.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.unfold(rg.arange(9.0).reshape(1, 1, 3, 3), 2).tolist()
        [[[0.0, 1.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0], [3.0, 4.0, 6.0, 7.0], [4.0, 5.0, 7.0, 8.0]]]
    """
    owner = "unfold" if owner is None else owner
    attrs = _block_args(owner, kernel_size, dilation, padding, stride)
    x, batched = _as_batch(owner, input, 3, "(C, H, W) or (N, C, H, W)")
    blocks = blocks_shape(x.shape[2:], **attrs)
    if min(blocks) < 1:
        raise RuntimeError(f"{name_of(owner)}: input of shape {tuple(input.shape)} gives "
                           f"{blocks} sliding blocks with kernel_size {attrs['kernel_size']}, "
                           f"dilation {attrs['dilation']}, padding {attrs['padding']}, stride "
                           f"{attrs['stride']}: the dilated kernel does not fit in the padded "
                           f"input")
    cols = Im2col.apply(x, **attrs)
    return cols if batched else cols.squeeze(0)


def fold(input, output_size, kernel_size, dilation=1, padding=0,  # noqa: A002
         stride=1, *, owner=None):
    """Sum sliding blocks back into an image (col2im, the adjoint of unfold): each entry
    input[n, (c, i, j), l] is added to output[n, c, ho*sh - ph + i*dh, wo*sw - pw + j*dw]
    for block l = ho*Wo + wo; entries that fall on the padding are dropped.

    Args:
        input: (N, C*kh*kw, L), or (C*kh*kw, L) unbatched; L must be the number of blocks of
            output_size (see unfold).
        output_size: (H, W) of the output (int or pair).
        kernel_size, dilation, padding, stride: as unfold.
        owner: who errors name (a layer passes itself); default "fold".

    Shape:
        - Output: (N, C, H, W) (or (C, H, W)).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.fold(rg.ones(1, 4, 4), (3, 3), 2)[0, 0].tolist()
        [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    owner = "fold" if owner is None else owner
    attrs = _block_args(owner, kernel_size, dilation, padding, stride)
    size = _checks.int_tuple(owner, "output_size", output_size, 2, 1)
    cols, batched = _as_batch(owner, input, 2, "(C*kh*kw, L) or (N, C*kh*kw, L)")
    (kh, kw), rows, length = attrs["kernel_size"], cols.shape[1], cols.shape[2]
    if rows % (kh * kw):
        raise RuntimeError(f"{name_of(owner)}: input of shape {tuple(input.shape)}: its "
                           f"C*kh*kw dimension ({rows}) must be divisible by the product of "
                           f"kernel_size {attrs['kernel_size']}")
    blocks = blocks_shape(size, **attrs)
    if min(blocks) < 1 or blocks[0] * blocks[1] != length:
        raise RuntimeError(f"{name_of(owner)}: input of shape {tuple(input.shape)} has "
                           f"{length} blocks, but output_size {size} with kernel_size "
                           f"{attrs['kernel_size']}, dilation {attrs['dilation']}, padding "
                           f"{attrs['padding']}, stride {attrs['stride']} has {blocks[0]} * "
                           f"{blocks[1]} = {max(blocks[0], 0) * max(blocks[1], 0)}")
    y = Col2im.apply(cols, output_size=size, **attrs)
    return y if batched else y.squeeze(0)


def _block_args(owner, kernel_size, dilation, padding, stride):
    return dict(kernel_size=_checks.int_tuple(owner, "kernel_size", kernel_size, 2, 1),
                dilation=_checks.int_tuple(owner, "dilation", dilation, 2, 1),
                padding=_checks.int_tuple(owner, "padding", padding, 2, 0),
                stride=_checks.int_tuple(owner, "stride", stride, 2, 1))


def _as_batch(owner, input, dims, shapes):  # noqa: A002
    """input as a batch of ``dims + 1`` dims, and whether it was one; input of ``dims``
    dims is one unbatched sample. Every dim but the batch must be non-zero."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got "
                        f"{type(input).__name__}")
    if input.ndim not in (dims, dims + 1) or 0 in input.shape[input.ndim - dims:]:
        raise RuntimeError(f"{name_of(owner)}: expected a {shapes} input with non-zero "
                           f"dimensions (but the batch), got input of shape "
                           f"{tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{name_of(owner)}: expected a floating input, got dtype "
                        f"{input.dtype}")
    batched = input.ndim == dims + 1
    return (input if batched else input.unsqueeze(0)), batched
