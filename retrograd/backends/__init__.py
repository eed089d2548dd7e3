"""``retrograd.backends``: PyTorch's switches for its GPU and CPU kernel libraries.

PyTorch programs set these unconditionally (``torch.backends.cudnn.benchmark = True``,
``torch.backends.cuda.matmul.allow_tf32 = True``) or ask what is there
(``torch.backends.mps.is_available()``). retrograd has none of those libraries, so the flags
are stored with PyTorch's defaults and change nothing, and every ``is_available()`` is False.

Here too are PyTorch's top-level switches of the same kind: ``set_float32_matmul_precision``
(TF32 on GPUs; retrograd's float32 matmul is always full float32 precision) and
``use_deterministic_algorithms`` (retrograd's kernels are deterministic already).
"""

import warnings

from retrograd.backends import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps", "set_float32_matmul_precision",
           "get_float32_matmul_precision", "use_deterministic_algorithms",
           "are_deterministic_algorithms_enabled",
           "is_deterministic_algorithms_warn_only_enabled"]

MATMUL_PRECISIONS = ("highest", "high", "medium")
_SETTINGS = {"matmul_precision": "highest", "deterministic": False, "warn_only": False}


def set_float32_matmul_precision(precision):
    """Record PyTorch's float32 matmul precision ("highest", "high" or "medium"). It changes
    nothing here: retrograd multiplies float32 matrices in float32. As PyTorch, another string
    only warns, and a non-string is a RuntimeError.

    Example:
        >>> import retrograd as rg
        >>> rg.set_float32_matmul_precision("high")
        >>> rg.get_float32_matmul_precision()
        'high'
        >>> rg.set_float32_matmul_precision("highest")
    """
    if not isinstance(precision, str):
        raise RuntimeError(f"set_float32_matmul_precision expects a str, but got "
                           f"{type(precision).__name__}")
    if precision not in MATMUL_PRECISIONS:
        warnings.warn(f"set_float32_matmul_precision: {precision!r} is not one of 'highest', "
                      f"'high', or 'medium'; the call has no effect", UserWarning, stacklevel=2)
        return
    _SETTINGS["matmul_precision"] = precision


def get_float32_matmul_precision():
    return _SETTINGS["matmul_precision"]


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Record the flag: every retrograd kernel is deterministic, so nothing changes."""
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms: mode must be a bool, got "
                        f"{type(mode).__name__}")
    _SETTINGS["deterministic"], _SETTINGS["warn_only"] = mode, bool(warn_only)


def are_deterministic_algorithms_enabled():
    return _SETTINGS["deterministic"]


def is_deterministic_algorithms_warn_only_enabled():
    return _SETTINGS["warn_only"]
