"""interpolate (and the deprecated upsample, upsample_nearest, upsample_bilinear): PyTorch's
argument rules around ops.interpolate.

The output size comes from ``size``, or from ``scale_factor`` as floor(n * scale_factor);
with a scale factor PyTorch (and so this) also reads the input at 1 / scale_factor steps
rather than n / m, unless recompute_scale_factor=True (see ops/interpolate.py).
"""

import math
import warnings

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd._checks import name_of
from retrograd.nn.functional.pool import adaptive_avg_pool1d, adaptive_avg_pool2d
from retrograd.ops.interpolate import UpsampleBicubic, UpsampleLinear, UpsampleNearest
from retrograd.tensor import Tensor

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear"]

_INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")
# mode -> the input's number of dims it needs (None: any of 3, 4, 5)
_MODE_DIMS = {"nearest": None, "nearest-exact": None, "area": None, "linear": 3,
              "bilinear": 4, "bicubic": 4, "trilinear": 5}


def interpolate(input, size=None, scale_factor=None, mode="nearest",  # noqa: A002
                align_corners=None, recompute_scale_factor=None, antialias=False, *,
                owner=None):
    """Resize the spatial axes of input (everything after (N, C)) by interpolation.

    Args:
        input: (N, C, L), (N, C, H, W) or (N, C, D, H, W), floating point.
        size: the output's spatial size: an int (every axis) or a tuple, one per axis.
        scale_factor: instead of size: a float (every axis) or a tuple; the output size is
            floor(input size * scale_factor).
        mode: 'nearest' (3-5-D), 'nearest-exact' (3-5-D), 'linear' (3-D), 'bilinear' (4-D),
            'bicubic' (4-D), 'trilinear' (5-D), 'area' (3-D and 4-D: adaptive average
            pooling).
        align_corners: for the interpolating modes: True maps the corner pixels' centres
            onto each other ((n - 1) / (m - 1) steps), False (the default) the corners of
            the pixels (n / m steps, half-pixel offsets). Not allowed for the other modes.
        recompute_scale_factor: with scale_factor, True derives the steps from the rounded
            output size instead of from scale_factor.
        antialias: only False (anti-aliased downsampling is not implemented).
        owner: who errors name (a layer passes itself); default "interpolate".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[[1., 2., 4.]]])
        >>> F.interpolate(x, scale_factor=2).tolist()
        [[[1.0, 1.0, 2.0, 2.0, 4.0, 4.0]]]
        >>> F.interpolate(x, size=5, mode="linear", align_corners=True).tolist()
        [[[1.0, 1.5, 2.0, 3.0, 4.0]]]
    """
    owner = "interpolate" if owner is None else owner
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got {type(input).__name__}")
    align_corners = _align_corners(owner, mode, align_corners)
    dims = input.ndim - 2
    out_size, scales = _sizes(owner, input, dims, size, scale_factor)
    if recompute_scale_factor and size is not None:
        raise ValueError(f"{name_of(owner)}: recompute_scale_factor is not meaningful with an "
                         f"explicit size.")
    if scales is not None and (recompute_scale_factor or mode == "area"):
        scales = None   # the steps follow from the rounded output size (area always)
    if antialias:
        raise NotImplementedError(f"{name_of(owner)}: antialias=True is not implemented; "
                                  f"use antialias=False")
    _check_mode(owner, mode, input)
    _check_input(owner, input, out_size)
    scales = scales if scales is not None else (None,) * dims
    if mode == "area":
        return _area(owner, input, out_size)
    if mode in ("nearest", "nearest-exact"):
        return UpsampleNearest.apply(input, size=out_size, scales=scales,
                                     exact=mode == "nearest-exact")
    op = UpsampleBicubic if mode == "bicubic" else UpsampleLinear
    return op.apply(input, size=out_size, scales=scales, align_corners=align_corners)


def _align_corners(owner, mode, align_corners):
    if mode not in _INTERPOLATING:
        if align_corners is not None:
            raise ValueError(f"{name_of(owner)}: align_corners option can only be set with the "
                             f"interpolating modes: linear | bilinear | bicubic | trilinear "
                             f"(got mode={mode!r})")
        return None
    return False if align_corners is None else bool(align_corners)


def _sizes(owner, input, dims, size, scale_factor):  # noqa: A002
    """(output spatial size, scale factors or None), PyTorch's rules."""
    spatial = tuple(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError(f"{name_of(owner)}: only one of size or scale_factor should be defined")
    if size is not None:
        sizes = _per_axis(owner, "size", size, dims, spatial, "output size")
        if not all(_checks.is_int(s) for s in sizes):
            raise TypeError(f"{name_of(owner)}: expected size to be an int or a tuple of ints, "
                            f"got {size!r}")
        return tuple(int(s) for s in sizes), None
    if scale_factor is None:
        raise ValueError(f"{name_of(owner)}: either size or scale_factor should be defined")
    factors = _per_axis(owner, "scale_factor", scale_factor, dims, spatial, "scale_factor")
    factors = tuple(_checks.number(owner, "scale_factor", f) for f in factors)
    # PyTorch truncates n * scale_factor (computed in double) toward zero
    return tuple(int(math.trunc(n * f)) for n, f in zip(spatial, factors)), factors


def _per_axis(owner, name, value, dims, spatial, what):
    if not isinstance(value, (tuple, list)):
        return (value,) * max(dims, 0)
    if len(value) != dims:
        raise ValueError(f"{name_of(owner)}: input and {name} must have the same number of "
                         f"spatial dimensions, but got input with spatial dimensions of "
                         f"{list(spatial)} and {what} of {tuple(value)}. Please provide "
                         f"input tensor in (N, C, d1, d2, ...,dK) format and {name} in "
                         f"(o1, o2, ...,oK) format.")
    return tuple(value)


def _check_mode(owner, mode, input):  # noqa: A002
    if mode not in _MODE_DIMS or input.ndim not in (3, 4, 5):
        raise NotImplementedError(
            f"{name_of(owner)}: only 3D, 4D and 5D input tensors are supported (got "
            f"{input.ndim}D, shape {tuple(input.shape)}) for the modes: nearest | linear | "
            f"bilinear | bicubic | trilinear | area | nearest-exact (got {mode!r})")
    needed = _MODE_DIMS[mode]
    if needed is not None and input.ndim != needed:
        raise NotImplementedError(f"{name_of(owner)}: got {input.ndim}D input (shape "
                                  f"{tuple(input.shape)}), but {mode} mode needs {needed}D "
                                  f"input")
    if mode == "area" and input.ndim == 5:
        raise NotImplementedError(f"{name_of(owner)}: mode 'area' supports 3D and 4D input "
                                  f"(adaptive average pooling), got shape {tuple(input.shape)}")


def _check_input(owner, input, out_size):  # noqa: A002
    shape = tuple(input.shape)
    if not _dt.is_floating(input._data.dtype):
        raise TypeError(f"{name_of(owner)}: expected a floating-point input, got dtype "
                        f"{input.dtype} (shape {shape})")
    if 0 in shape[1:]:
        raise RuntimeError(f"{name_of(owner)}: non-empty {input.ndim}D data tensor expected "
                           f"(only the batch may be 0), but got a tensor with sizes {shape}")
    if any(m <= 0 for m in out_size):
        raise RuntimeError(f"{name_of(owner)}: input and output sizes should be greater than "
                           f"0, but got input spatial size {shape[2:]} and output size "
                           f"{tuple(out_size)}")


def _area(owner, input, out_size):  # noqa: A002
    pool = adaptive_avg_pool1d if input.ndim == 3 else adaptive_avg_pool2d
    return pool(input, out_size if input.ndim == 4 else out_size[0], owner=owner)


def upsample(input, size=None, scale_factor=None, mode="nearest",  # noqa: A002
             align_corners=None):
    """Deprecated: interpolate(input, size, scale_factor, mode, align_corners), with
    PyTorch's warning."""
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):  # noqa: A002
    """Deprecated: interpolate(input, size, scale_factor, mode='nearest'), with PyTorch's
    warning."""
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use "
                  "`nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):  # noqa: A002
    """Deprecated: interpolate(input, size, scale_factor, mode='bilinear',
    align_corners=True), with PyTorch's warning."""
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use "
                  "`nn.functional.interpolate` instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
