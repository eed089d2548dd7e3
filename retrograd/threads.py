"""One thread count for everything retrograd runs in parallel, as ``torch.set_num_threads``:
BLAS (the OpenBLAS or MKL under NumPy's matrix products, through threadpoolctl), the compiled
kernels of the 'fast' extra (Numba's threads), its oneDNN convolutions (GNU OpenMP's threads,
the same pool as Numba's) and retrograd's own copy threads
(retrograd/ops/_parallel.py). Without a call each uses the machine's cores (BLAS: as its
environment variables say, OMP_NUM_THREADS / OPENBLAS_NUM_THREADS).

Setting them together matters on a small machine: two pools that each think they own every
core take turns on them, and a pool whose threads spin while they wait for work (OpenBLAS
after a GEMM) slows the other one's next kernel. With the 'fast' extra retrograd therefore
runs one pool (retrograd/_numba/policy.py): NumPy's BLAS on one thread, retrograd's matrix
products and compiled kernels on ``count`` of Numba's threads.

Example:
    >>> import retrograd as rg
    >>> before = rg.get_num_threads()
    >>> rg.set_num_threads(1)
    >>> rg.get_num_threads()
    1
    >>> rg.set_num_threads(before)
"""

import os

from retrograd import _checks

__all__ = ["get_num_threads", "set_num_threads"]

_CHOSEN = []


def get_num_threads():
    """The number of threads retrograd's parallel work uses (the last set_num_threads, else
    the cores of the machine)."""
    return _CHOSEN[-1] if _CHOSEN else max(1, os.cpu_count() or 1)


def set_num_threads(count):
    """Use ``count`` threads for BLAS, the compiled kernels and retrograd's copy threads.

    BLAS is limited through threadpoolctl (installed with the 'fast' extra); without it
    only the other two change, and BLAS keeps the count it started with (set
    OMP_NUM_THREADS before starting Python). With the one thread pool NumPy's own BLAS stays
    on one thread and retrograd's products run on ``count`` of Numba's threads."""
    count = _checks.integer("set_num_threads", "count", count)
    if count < 1:
        raise ValueError(f"set_num_threads: count must be at least 1, got {count}")
    _CHOSEN.append(count)
    from retrograd.ops import _parallel

    _parallel.set_threads(count)
    _set_blas_threads(count)
    _set_compiled_threads(count)


def _set_blas_threads(count):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=count, user_api="blas")


def _set_compiled_threads(count):
    from retrograd._fast import enabled

    if not enabled():
        return
    import numba

    from retrograd._numba import policy

    numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    policy.use_threads(count)
    from retrograd._onednn import library

    library.set_threads(count)
