"""Which kernels run: the compiled ones of the 'fast' extra (Numba, the modules of
retrograd/_numba/, one per family of ops) when Numba is installed, else the NumPy ones, which
are the reference and the default. ``RETROGRAD_KERNELS=numpy`` in the environment selects the
NumPy kernels even with Numba installed. Numba is imported on first use, not with retrograd;
its compiled kernels are cached on disk (next to the package, or in the user's cache when
that is not writable: Numba's own fallback).

An op asks ``compiled("norm")`` and gets the module ``retrograd._numba.norm`` or None; the
op's NumPy code stays beside the call as the reference path (for other dtypes and layouts
the kernels do not take, and for everyone without Numba)."""

import importlib
import os

import numpy as np

__all__ = ["FLOATS", "compiled", "compiled_for", "compiled_kernels", "enabled"]

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

_MODULES = {}
_ENABLED = []


def enabled():
    """Whether compiled kernels run: Numba importable and RETROGRAD_KERNELS is not 'numpy'."""
    if not _ENABLED:
        _ENABLED.append(_numba_usable())
    return _ENABLED[0]


def _numba_usable():
    if os.environ.get("RETROGRAD_KERNELS", "").strip().lower() == "numpy":
        return False
    try:
        import numba
    except ImportError:
        return False
    from retrograd._numba import policy

    policy.use_threads(numba.get_num_threads())
    _type_sizes_as_tuples()
    return True


def _type_sizes_as_tuples():
    """retrograd.Size (what Tensor.shape returns) is a tuple subclass, which Numba cannot type
    by itself: a kernel given one sees the tuple of ints it is."""
    from numba.extending import typeof_impl

    from retrograd._size import Size

    typeof_impl.register(Size)(lambda value, context: typeof_impl(tuple(value), context))


def compiled(family):
    """The module of compiled kernels ``retrograd._numba.<family>``, or None (no Numba, or
    RETROGRAD_KERNELS=numpy)."""
    module = _MODULES.get(family)
    if module is None and family not in _MODULES:
        module = importlib.import_module(f"retrograd._numba.{family}") if enabled() else None
        _MODULES[family] = module
    return module


def compiled_for(family, *arrays, dtypes=FLOATS):
    """compiled(family) when every array is a C-contiguous NumPy array, all of one dtype
    among ``dtypes``, else None: the check every op makes before it hands its arrays to a
    kernel (the Tensors of a create_graph backward, strided views and other dtypes take the
    NumPy path)."""
    dtype = arrays[0].dtype if isinstance(arrays[0], np.ndarray) else None
    if dtype not in dtypes:
        return None
    for array in arrays:
        if not isinstance(array, np.ndarray) or array.dtype != dtype \
                or not array.flags.c_contiguous:
            return None
    return compiled(family)


def compiled_kernels():
    """The compiled float32 <-> bfloat16/float16 casts (retrograd._numba.casts), or None."""
    return compiled("casts")
