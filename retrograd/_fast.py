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

__all__ = ["FLOATS", "compiled", "compiled_for", "compiled_kernels", "enabled", "onednn"]

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

_MODULES = {}
_ONEDNN = {}
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

    _full_width_vectors(numba)
    policy.use_threads(numba.get_num_threads())
    _type_sizes_as_tuples()
    return True


# CPUs whose 512-bit vectors run at (nearly) full clock, for which LLVM still tunes for
# 256-bit vectors: Ice Lake and later Intel server and client cores, AMD Zen 4 and 5. On the
# older AVX-512 cores (Skylake-SP, Cascade Lake, Cooper Lake) 512-bit code lowers the clock
# of the whole core, and LLVM's tuning stays.
_FULL_WIDTH_CPUS = frozenset({
    "icelake-client", "icelake-server", "tigerlake", "rocketlake", "sapphirerapids",
    "emeraldrapids", "graniterapids", "graniterapids-d", "diamondrapids", "znver4", "znver5"})


def _full_width_vectors(numba):
    """Let Numba's LLVM use 512-bit vectors on the CPUs of _FULL_WIDTH_CPUS: the host's own
    CPU name and features, without the "prefer-256-bit" tuning. The compute-bound kernels run
    1.4x-1.8x faster (measured: docs/performance.md, '512-bit vectors'). A CPU name or
    feature list the user gave Numba (NUMBA_CPU_NAME, NUMBA_CPU_FEATURES) is kept. Numba
    keys its disk cache by CPU name and features, so the setting never mixes with code
    compiled without it."""
    if numba.config.CPU_NAME or numba.config.CPU_FEATURES:
        return
    from llvmlite import binding

    name = binding.get_host_cpu_name()
    if name in _FULL_WIDTH_CPUS:
        numba.config.CPU_NAME = name
        numba.config.CPU_FEATURES = binding.get_host_cpu_features().flatten() \
            + ",-prefer-256-bit"


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


def onednn(family):
    """The module ``retrograd._onednn.<family>`` of oneDNN's primitives, or None: not
    installed (the 'fast' extra brings it on x86-64 Linux), RETROGRAD_KERNELS=numpy, or a
    child made by fork() (retrograd/_onednn/library.py)."""
    if family not in _ONEDNN:
        _ONEDNN[family] = _onednn_module(family)
    module = _ONEDNN[family]
    return module if module is not None and module.usable() else None


def _onednn_module(family):
    if not enabled():
        return None
    from retrograd._onednn import library

    if library.load() is None:
        return None
    return importlib.import_module(f"retrograd._onednn.{family}")


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
