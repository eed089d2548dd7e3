"""``retrograd.cuda.amp``: PyTorch's older CUDA spellings of autocast and GradScaler,
``torch.cuda.amp.autocast(...)`` and ``torch.cuda.amp.GradScaler(...)``.

Scripts make them unconditionally (nanoGPT's ``GradScaler(enabled=(dtype == 'float16'))``).
There is no CUDA here, so, as in a CPU-only PyTorch, both are disabled (with a warning when
asked to be enabled): the autocast block runs in float32 and the scaler passes losses and
steps through.
"""

from retrograd.amp.autocast import autocast as _autocast
from retrograd.amp.grad_scaler import GradScaler as _GradScaler

__all__ = ["autocast", "GradScaler"]


def autocast(enabled=True, dtype=None, cache_enabled=True):
    """``torch.cuda.amp.autocast``: the same as ``retrograd.amp.autocast("cuda", ...)``."""
    return _autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


def GradScaler(*args, **kwargs):  # noqa: N802 - PyTorch's name
    """``torch.cuda.amp.GradScaler``: ``retrograd.amp.GradScaler("cuda", ...)`` (its arguments
    after the device come in the same order, with the same defaults)."""
    return _GradScaler("cuda", *args, **kwargs)
