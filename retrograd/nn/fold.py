"""Unfold and Fold: sliding blocks to columns (im2col) and back (col2im), thin Modules over
nn.functional. They hold no parameters."""

from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["Unfold", "Fold"]


class Unfold(Module):
    """The sliding local blocks of a batched image, as columns (im2col):
    output[n, (c, i, j), l] = input_pad[n, c, ho*sh + i*dh, wo*sw + j*dw], l = ho*Wo + wo.
    A convolution is this followed by one matrix product with the flattened weight.

    Args:
        kernel_size: int or (kh, kw).
        dilation: spacing between the cells of a block. Default: 1.
        padding: implicit zeros on both sides. Default: 0.
        stride: step between blocks. Default: 1.

    Shape:
        - Input: (N, C, H, W) or (C, H, W).
        - Output: (N, C*kh*kw, L) or (C*kh*kw, L), L = Ho*Wo with
          Ho = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1, Wo alike.

    Example:
        >>> import retrograd as rg
        >>> unfold = rg.nn.Unfold(kernel_size=(2, 3))
        >>> unfold
        Unfold(kernel_size=(2, 3), dilation=1, padding=0, stride=1)
        >>> unfold(rg.randn(2, 5, 3, 4)).shape
        (2, 30, 4)
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride,
                        owner=self)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Module):
    """Sums sliding local blocks back into a batched image (col2im, the adjoint of Unfold):
    each column entry is added to the output pixel it stands for, overlapping blocks add up
    and entries on the padding are dropped. fold(unfold(x)) is x times the number of blocks
    that cover each pixel.

    Args:
        output_size: (H, W) of the output (int or pair).
        kernel_size, dilation, padding, stride: as Unfold.

    Shape:
        - Input: (N, C*kh*kw, L) or (C*kh*kw, L), L the number of blocks of output_size.
        - Output: (N, C, H, W) or (C, H, W).

    Example:
        >>> import retrograd as rg
        >>> fold = rg.nn.Fold(output_size=(4, 5), kernel_size=(2, 2))
        >>> fold
        Fold(output_size=(4, 5), kernel_size=(2, 2), dilation=1, padding=0, stride=1)
        >>> fold(rg.randn(1, 3 * 2 * 2, 12)).shape
        (1, 3, 4, 5)
    """

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride, owner=self)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")
