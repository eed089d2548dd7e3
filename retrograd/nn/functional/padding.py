"""pad: PyTorch's F.pad (constant, reflect, replicate, circular) around ops.padding.

The pad tuple follows PyTorch: (before, after) pairs starting from the LAST axis, so
(1, 2, 3, 4) pads the last axis by 1 before and 2 after, the one before it by 3 and 4.
Errors are PyTorch's, with the same exception types (RuntimeError for bad sizes,
NotImplementedError for modes and dimensionalities PyTorch does not implement).
"""

from retrograd import _checks
from retrograd._checks import name_of
from retrograd.ops.padding import ConstantPad, IndexPad, padded_shape
from retrograd.tensor import Tensor

__all__ = ["pad"]

_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None, *, owner=None):  # noqa: A002
    """Pad the last len(pad) // 2 axes of input.

    Args:
        input: a Tensor. For mode 'constant' any number of dims >= len(pad) / 2; for the other
            modes a pad of length 2, 4 or 6 (the last 1, 2 or 3 axes) with one or two axes
            before them (e.g. (N, C, H, W) or (C, H, W) for length 4).
        pad: (before_last, after_last, before_2nd_last, after_2nd_last, ...) ints. Negative
            values crop (every mode; 'reflect' needs each pad < the axis' size, 'circular'
            each pad <= the size left after cropping).
        mode: 'constant' (value around), 'reflect' (mirrored about the edge element, which
            is not repeated: [1, 2, 3] by 2 -> [3, 2, 1, 2, 3, 2, 1]), 'replicate' (the edge
            element repeated), 'circular' (wrapped around).
        value: the fill of 'constant' mode (default 0); the other modes take none.
        owner: who errors name (a layer passes itself); default "pad".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[1., 2., 3.]])
        >>> F.pad(x, (2, 1), mode="reflect").tolist()
        [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
        >>> F.pad(x, (1, -1), value=9.0).tolist()
        [[9.0, 1.0, 2.0]]
    """
    owner = "pad" if owner is None else owner
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got {type(input).__name__}")
    pads = _pairs(owner, pad, input.ndim)
    if mode not in _MODES:
        raise NotImplementedError(f"{name_of(owner)}: unrecognised padding mode {mode!r}; "
                                  f"expected one of {', '.join(_MODES)}")
    if mode == "constant":
        _check_size(owner, input.shape, pads, pad, minimum=0)
        fill = 0.0 if value is None else _checks.number(owner, "value", value)
        return ConstantPad.apply(input, pads=pads, value=fill)
    _check_border_mode(owner, input, pad, pads, mode, value)
    return IndexPad.apply(input, pads=pads, mode=mode)


def _pairs(owner, pad, ndim):
    """PyTorch's pad tuple as ((before, after), ...) in axis order, checked."""
    if not isinstance(pad, (tuple, list)) or not all(_checks.is_int(p) for p in pad):
        raise TypeError(f"{name_of(owner)}: pad must be a tuple of ints (before, after, ...) "
                        f"starting from the last dimension, got {pad!r}")
    if len(pad) % 2:
        raise RuntimeError(f"{name_of(owner)}: padding length must be divisible by 2, got "
                           f"pad {tuple(pad)} of length {len(pad)}")
    if len(pad) > 2 * ndim:
        raise RuntimeError(f"{name_of(owner)}: padding length should be less than or equal to "
                           f"two times the input dimension but got padding length {len(pad)} "
                           f"and input of dimension {ndim}")
    pairs = [(int(pad[i]), int(pad[i + 1])) for i in range(0, len(pad), 2)]
    return tuple(reversed(pairs))


def _check_size(owner, shape, pads, pad, minimum):
    out = padded_shape(shape, pads)
    if any(n < minimum for n in out[len(out) - len(pads):]):
        raise RuntimeError(f"{name_of(owner)}: padding {tuple(pad)} makes a dimension of input "
                           f"of shape {tuple(shape)} {'negative' if minimum == 0 else 'empty'}: "
                           f"the output shape would be {out}")


def _check_border_mode(owner, input, pad, pads, mode, value):  # noqa: A002
    """PyTorch's conditions on the reflect, replicate and circular modes."""
    shape, k = tuple(input.shape), len(pads)
    if value is not None and value != 0:
        raise RuntimeError(f"{name_of(owner)}: padding mode {mode!r} doesn't take in value "
                           f"argument (got value={value!r})")
    if k not in (1, 2, 3) or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"{name_of(owner)}: padding size {len(pad)} is not supported for {input.ndim}D "
            f"input tensor (shape {shape}). Supported combinations for non-constant padding: "
            f"2D or 3D input with padding size 2 (pads the last dimension), 3D or 4D input "
            f"with padding size 4 (the last 2), 4D or 5D input with padding size 6 (the last 3)")
    if mode == "circular":
        _check_circular(owner, shape, pad, pads)
        return
    non_batch = shape[1:] if input.ndim == k + 2 else shape
    if 0 in non_batch:
        raise RuntimeError(f"{name_of(owner)}: {mode} padding expects an input with possibly "
                           f"0 batch size and other non-zero dimensions, got shape {shape}")
    if mode == "reflect":
        for axis, (n, (before, after)) in enumerate(zip(shape[-k:], pads)):
            if before >= n or after >= n:
                raise RuntimeError(
                    f"{name_of(owner)}: reflect padding size should be less than the "
                    f"corresponding input dimension, but got padding ({before}, {after}) at "
                    f"dimension {input.ndim - k + axis} of input {shape}")
    _check_size(owner, shape, pads, pad, minimum=1)


def _check_circular(owner, shape, pad, pads):
    k = len(pads)
    for axis, (n, (before, after)) in enumerate(zip(shape[-k:], pads)):
        kept = n - max(-before, 0) - max(-after, 0)
        if before > kept or after > kept:
            raise RuntimeError(
                f"{name_of(owner)}: circular padding value causes wrapping around more than "
                f"once: padding ({before}, {after}) at dimension {len(shape) - k + axis} of "
                f"input {shape} ({kept} elements after cropping)")
    _check_size(owner, shape, pads, pad, minimum=0)
