"""pixel_shuffle and pixel_unshuffle: PyTorch's sub-pixel rearrangements, composed of a
reshape and a permute (so their gradients are those ops' own: the inverse rearrangement,
and double backward works)."""

from retrograd import _checks
from retrograd._checks import name_of
from retrograd.tensor import Tensor

__all__ = ["pixel_shuffle", "pixel_unshuffle"]


def pixel_shuffle(input, upscale_factor, *, owner=None):  # noqa: A002
    """Rearrange (*, C*r^2, H, W) into (*, C, H*r, W*r), r = upscale_factor:

        y[..., c, h*r + i, w*r + j] = x[..., c*r^2 + i*r + j, h, w]

    (the sub-pixel convolution layer's upsampling). Any dtype; any number of leading dims.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.pixel_shuffle(rg.arange(4.).reshape(1, 4, 1, 1), 2).tolist()
        [[[[0.0, 1.0], [2.0, 3.0]]]]
    """
    owner = "pixel_shuffle" if owner is None else owner
    r = _factor(owner, input, upscale_factor, "upscale_factor")
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"{name_of(owner)}: expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                           f"is not divisible by {r * r} (input of shape {tuple(input.shape)})")
    k = len(batch)
    y = input.reshape(*batch, c // (r * r), r, r, h, w)
    # (*, C, i, j, H, W) -> (*, C, H, i, W, j)
    y = y.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return y.reshape(*batch, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor, *, owner=None):  # noqa: A002
    """The inverse of pixel_shuffle: (*, C, H*r, W*r) into (*, C*r^2, H, W),
    r = downscale_factor:

        y[..., c*r^2 + i*r + j, h, w] = x[..., c, h*r + i, w*r + j]

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.pixel_unshuffle(rg.arange(4.).reshape(1, 1, 2, 2), 2).flatten().tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    owner = "pixel_unshuffle" if owner is None else owner
    r = _factor(owner, input, downscale_factor, "downscale_factor")
    *batch, c, h, w = input.shape
    for name, size, axis in (("height", h, -2), ("width", w, -1)):
        if size % r:
            raise RuntimeError(f"{name_of(owner)}: expects {name} to be divisible by "
                               f"downscale_factor, but input.size({axis})={size} is not "
                               f"divisible by {r} (input of shape {tuple(input.shape)})")
    k = len(batch)
    y = input.reshape(*batch, c, h // r, r, w // r, r)
    # (*, C, H, i, W, j) -> (*, C, i, j, H, W)
    y = y.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return y.reshape(*batch, c * r * r, h // r, w // r)


def _factor(owner, input, factor, name):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got {type(input).__name__}")
    if not _checks.is_int(factor):
        raise TypeError(f"{name_of(owner)}: {name} must be an int, got {factor!r}")
    if factor < 1:
        raise RuntimeError(f"{name_of(owner)}: expects a positive {name}, but got {factor}")
    if input.ndim < 3:
        raise RuntimeError(f"{name_of(owner)}: expects input to have at least 3 dimensions, "
                           f"but got input with {input.ndim} dimension(s) (shape "
                           f"{tuple(input.shape)})")
    return int(factor)
