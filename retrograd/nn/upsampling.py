"""Upsampling layers: Upsample, UpsamplingNearest2d, UpsamplingBilinear2d, thin Modules over
nn.functional.interpolate."""

from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


class Upsample(Module):
    """Resizes the spatial axes of (N, C, L), (N, C, H, W) or (N, C, D, H, W) inputs by
    interpolation (F.interpolate).

    Args:
        size: the output's spatial size: an int or a tuple, one per axis.
        scale_factor: instead of size: a float or a tuple (kept as floats, as PyTorch).
        mode: 'nearest' (default), 'nearest-exact', 'linear', 'bilinear', 'bicubic',
            'trilinear' or 'area'.
        align_corners: for the interpolating modes (see F.interpolate). Default: None
            (False for them).
        recompute_scale_factor: derive the steps from the rounded output size instead of
            from scale_factor. Default: None.

    Shape:
        - Input: (N, C, *in). Output: (N, C, *out), out = size, or floor(in * scale_factor).

    Example:
        >>> import retrograd as rg
        >>> up = rg.nn.Upsample(scale_factor=2, mode="bilinear")
        >>> up
        Upsample(scale_factor=2.0, mode='bilinear')
        >>> up(rg.ones(1, 3, 4, 5)).shape
        (1, 3, 8, 10)
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor, owner=self)

    def extra_repr(self):
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Upsample(size, scale_factor, mode='nearest') for (N, C, H, W) inputs (PyTorch keeps
    it for old code; Upsample or F.interpolate is the current spelling).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.UpsamplingNearest2d(scale_factor=2)(rg.tensor([[[[1., 2.]]]])).tolist()
        [[[[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]]]]
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Upsample(size, scale_factor, mode='bilinear', align_corners=True) for (N, C, H, W)
    inputs. NOTE: align_corners=True, unlike Upsample's bilinear default.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.UpsamplingBilinear2d(size=(1, 3))(rg.tensor([[[[1., 2.]]]])).tolist()
        [[[[1.0, 1.5, 2.0]]]]
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
