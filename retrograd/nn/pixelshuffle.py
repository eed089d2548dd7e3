"""PixelShuffle and PixelUnshuffle layers, thin Modules over nn.functional."""

from retrograd import _checks
from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle"]


class PixelShuffle(Module):
    """Rearranges (*, C*r^2, H, W) into (*, C, H*r, W*r), r = upscale_factor: the
    upsampling of an efficient sub-pixel convolution (Shi et al., 2016).

    Args:
        upscale_factor: r, a positive int.

    Shape:
        - Input: (*, C*r^2, H, W). Output: (*, C, H*r, W*r).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.PixelShuffle(3)(rg.randn(1, 9, 4, 4)).shape
        (1, 1, 12, 12)
    """

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = _checks.integer("PixelShuffle", "upscale_factor", upscale_factor)

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.pixel_shuffle(input, self.upscale_factor, owner=self)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """Reverses PixelShuffle: (*, C, H*r, W*r) into (*, C*r^2, H, W), r = downscale_factor.

    Args:
        downscale_factor: r, a positive int.

    Shape:
        - Input: (*, C, H*r, W*r). Output: (*, C*r^2, H, W).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.PixelUnshuffle(3)(rg.randn(1, 1, 12, 12)).shape
        (1, 9, 4, 4)
    """

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = _checks.integer("PixelUnshuffle", "downscale_factor",
                                                downscale_factor)

    def forward(self, input):  # noqa: A002
        return F.pixel_unshuffle(input, self.downscale_factor, owner=self)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"
