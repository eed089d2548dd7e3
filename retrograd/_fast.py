"""Which kernels run: the compiled ones of the 'fast' extra (Numba, retrograd/_numba_kernels.py)
when Numba is installed, else the NumPy ones, which are the reference and the default.
``RETROGRAD_KERNELS=numpy`` in the environment selects the NumPy kernels even with Numba
installed. Numba is imported on first use, not with retrograd; its compiled kernels are
cached on disk (next to the package, or in the user's cache when that is not writable)."""

import os

__all__ = ["compiled_kernels"]

_LOADED = []


def compiled_kernels():
    """The module of compiled kernels, or None (no Numba, or RETROGRAD_KERNELS=numpy)."""
    if not _LOADED:
        _LOADED.append(_load())
    return _LOADED[0]


def _load():
    if os.environ.get("RETROGRAD_KERNELS", "").strip().lower() == "numpy":
        return None
    try:
        from retrograd import _numba_kernels
    except ImportError:
        return None
    return _numba_kernels
